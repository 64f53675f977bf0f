//! A backfill of one table (`only_table`) always runs in a group of its
//! own: in a group that also loads the section's other tables, its offsets
//! would move past their rows, which would then never load.

use super::LoaderConfig;

/// Refuses `[[load]]` sections where one loads only one table
/// (`only_table`) in the group of another that loads the same topic: both
/// would move one set of offsets, and the other's rows would never load.
pub fn check_backfill_groups(loaders: &[LoaderConfig]) -> Result<(), String> {
    for backfill in loaders.iter().filter(|l| l.only_table.is_some()) {
        let shared = loaders.iter().any(|other| {
            !std::ptr::eq(other, backfill)
                && other.group == backfill.group
                && other.topics.iter().any(|t| backfill.topics.contains(t))
        });
        if shared {
            return Err(backfill.backfill_group_error());
        }
    }
    Ok(())
}

impl LoaderConfig {
    /// Refuses an `only_table` loader that runs in `section_group`, the
    /// group of the section whose other tables it leaves out: its offsets
    /// would move past their rows, which they would then never get.
    pub fn check_backfill_group(&self, section_group: &str) -> Result<(), String> {
        let other_tables = self.tables().len() > 1;
        if self.only_table.is_some() && other_tables && self.group == section_group {
            return Err(self.backfill_group_error());
        }
        Ok(())
    }

    fn backfill_group_error(&self) -> String {
        let only = self.only_table.as_deref().unwrap_or_default();
        let others: Vec<String> = self
            .tables()
            .into_iter()
            .map(|spec| spec.table)
            .filter(|table| table != only)
            .collect();
        format!(
            "only_table {only:?} in group {:?}, the group that loads this section's other tables ({}): \
             its offsets would move past their rows and they would never get them; \
             give the backfill a group of its own: --group backfill-{only}",
            self.group,
            others.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{Condition, RouteConfig};

    fn routed(group: &str, only_table: Option<&str>) -> LoaderConfig {
        let mut config = LoaderConfig::new(vec!["t".into()], group, "sqlite://w", "others");
        config.route = vec![RouteConfig {
            table: "a".into(),
            discard: false,
            when: Condition {
                pointer: "/kind".into(),
                equals: Some("a".into()),
                one_of: None,
                exists: None,
            },
            columns: Vec::new(),
            metadata: Vec::new(),
            dedup_key: "/uuid".into(),
            create_table: true,
        }];
        config.only_table = only_table.map(str::to_owned);
        config
    }

    #[test]
    fn a_backfill_in_its_sections_group_is_refused_naming_the_fix() {
        let error = routed("main", Some("a")).check_backfill_group("main").unwrap_err();
        assert!(
            error.contains("--group backfill-a") && error.contains("others"),
            "{error}"
        );
        assert!(routed("backfill-a", Some("a")).check_backfill_group("main").is_ok());
        assert!(routed("main", None).check_backfill_group("main").is_ok());
    }

    #[test]
    fn a_backfill_section_sharing_a_group_and_topic_with_another_is_refused() {
        let sections = [routed("main", None), routed("main", Some("a"))];
        assert!(check_backfill_groups(&sections).is_err());
        let sections = [routed("main", None), routed("backfill-a", Some("a"))];
        assert!(check_backfill_groups(&sections).is_ok());
    }
}
