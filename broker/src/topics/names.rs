//! Topic name rules, as Kafka's: 1 to 249 characters of `[a-zA-Z0-9._-]`,
//! not `.` or `..`. Names starting with `__` are reserved for the broker.

/// Kafka's limit: a partition directory name (`<topic>-<partition>`) plus
/// suffixes must fit a 255-byte file name.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!("{} characters; at most {TOPIC_NAME_BYTES_MAX}", name.len()));
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not topic names".into());
    }
    if name.starts_with("__") {
        return Err("names starting with '__' are reserved for the broker".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "character {bad:?} is not allowed; use a-z, A-Z, 0-9, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_are_accepted_and_others_explained() {
        for good in ["events", "a.b_c-1", &"x".repeat(249)] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "__internal", &"x".repeat(250), "é"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
