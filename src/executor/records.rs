//! Record journal (placeholder).
#[derive(Debug, Clone)]
pub struct Retention {
    pub max_count: usize,
    pub max_age: Option<std::time::Duration>,
}
