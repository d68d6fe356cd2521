//! The plain HTTP API under `/api`, health endpoints and the OpenAPI document.
