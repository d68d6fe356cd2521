//! Output logs (placeholder).
