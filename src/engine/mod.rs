//! The engine: one fresh V8 isolate per execution, inside a worker process.
