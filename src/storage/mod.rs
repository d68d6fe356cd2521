//! Heap snapshot stores: content-addressed, immutable objects named by SHA-256.
