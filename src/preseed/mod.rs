//! MicroCloud-compatible preseed files (reference/microcloud-flow.md §6): the schema, parsed
//! strictly (unknown keys are errors that name their path), and validation whose errors carry
//! the field path. The same file runs on every host.

pub mod schema;
mod services;
pub mod validate;

pub use schema::Preseed;
pub use validate::SessionPlan;

/// A preseed problem, with the path of the field (`systems[1].name`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("preseed {path}: {message}")]
pub struct PreseedError {
    pub path: String,
    pub message: String,
}

impl PreseedError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        PreseedError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Parse a preseed document. Unknown keys and type mismatches name the field path.
pub fn parse(text: &str) -> Result<Preseed, PreseedError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "(top level)".to_string()
        } else {
            path
        };
        // serde_yaml's message repeats the location; keep what the operator needs.
        PreseedError::new(path, e.into_inner().to_string())
    })
}
