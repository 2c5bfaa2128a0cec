//! Namespace names: unique among live tests, stable for a nextest slot within a run.

/// Names of one test environment's resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    /// `t_<run>_s<slot>` under nextest, `t_<uuid>` otherwise; also the `queue_id`.
    pub id: String,
    /// The nextest run this namespace belongs to (`t_<run>`), if any.
    pub run: Option<String>,
    /// The test's project: `p_<test name>_<short uuid>`.
    pub project: String,
}

/// Prefix of every harness namespace and collection; the reaper looks only at these.
pub const PREFIX: &str = "t_";

/// Per-slot names in use by this process's live environments.
static IN_USE: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn in_use() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<String>> {
    IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first suffix (`""`, `"x1"`, `"x2"`…) that makes `base` a name no live environment of
/// this process uses, reserved until [`release_name`].
fn claim_name(base: &str) -> String {
    let mut names = in_use();
    let suffix = (0u32..)
        .map(|n| {
            if n == 0 {
                String::new()
            } else {
                format!("x{n}")
            }
        })
        .find(|suffix| !names.contains(&format!("{base}{suffix}")))
        .unwrap_or_default();
    names.insert(format!("{base}{suffix}"));
    suffix
}

/// Makes a namespace id available again, once its environment released it.
pub(crate) fn release_name(id: &str) {
    in_use().remove(id);
}

impl Namespace {
    /// Derives the names from nextest's variables when present: `NEXTEST_RUN_ID` keeps concurrent
    /// runs apart, `NEXTEST_TEST_GLOBAL_SLOT` keeps the tests of a run apart (and lets a slot's
    /// next test reuse its collection). Outside nextest every environment gets a UUID.
    pub fn for_test(test_name: &str) -> Self {
        let run_id = std::env::var("NEXTEST_RUN_ID").ok();
        let slot = std::env::var("NEXTEST_TEST_GLOBAL_SLOT").ok();
        Self::from_parts(test_name, run_id.as_deref(), slot.as_deref())
    }

    pub(crate) fn from_parts(test_name: &str, run_id: Option<&str>, slot: Option<&str>) -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let project = format!("p_{}_{}", sanitize(test_name, 80), &unique[..8]);
        match (run_id, slot.and_then(|s| s.parse::<u32>().ok())) {
            (Some(run), Some(slot)) => {
                let run: String = sanitize(run, 64)
                    .chars()
                    .filter(|c| *c != '_')
                    .take(16)
                    .collect();
                // A test may build several environments at once: the ones alive beside the
                // first get a suffix. A finished one's name is reused, and its collection with it.
                let base = format!("{PREFIX}{run}_s{slot}");
                let suffix = claim_name(&base);
                Self {
                    id: format!("{base}{suffix}"),
                    run: Some(format!("{PREFIX}{run}")),
                    project,
                }
            }
            _ => Self {
                id: format!("{PREFIX}{unique}"),
                run: None,
                project,
            },
        }
    }
}

/// Lower-case `[a-z0-9_]`, at most `max` characters.
fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nextest_slots_of_one_run_differ_and_runs_keep_equal_slots_apart() {
        let run_a = "6f1c0a4e-92b1-4c3e-8d1a-0b9f2e7c5d11";
        let run_b = "0d3e9b7a-11f2-4a6c-9e85-7c2b4d1f0a93";
        let a0 = Namespace::from_parts("t", Some(run_a), Some("0"));
        let a1 = Namespace::from_parts("t", Some(run_a), Some("1"));
        let b0 = Namespace::from_parts("t", Some(run_b), Some("0"));
        assert_ne!(a0.id, a1.id);
        assert_ne!(a0.id, b0.id);
        assert_eq!(a0.run, a1.run);
        assert!(
            Namespace::from_parts("u", Some(run_a), Some("0"))
                .id
                .starts_with(&a0.id),
            "a slot's name is stable within its run"
        );
    }

    #[test]
    fn environments_alive_at_once_get_distinct_names_and_a_released_name_is_reused() {
        let run = "a3c1d2e4-0000-4000-8000-000000000001";
        let first = Namespace::from_parts("t", Some(run), Some("7"));
        let second = Namespace::from_parts("t", Some(run), Some("7"));
        assert_ne!(first.id, second.id);
        assert!(second.id.ends_with("x1"), "{}", second.id);
        release_name(&first.id);
        let third = Namespace::from_parts("t", Some(run), Some("7"));
        assert_eq!(
            third.id, first.id,
            "the slot's name (and collection) is reused"
        );
        release_name(&second.id);
        release_name(&third.id);
    }

    #[test]
    fn outside_nextest_every_namespace_is_unique_and_projects_carry_the_test_name() {
        let a = Namespace::from_parts("Index Then Search!", None, None);
        let b = Namespace::from_parts("Index Then Search!", None, None);
        assert_ne!(a.id, b.id);
        assert!(a.run.is_none());
        assert!(
            a.project.starts_with("p_index_then_search__"),
            "{}",
            a.project
        );
        assert!(queue::QueueId::new(&a.id).is_ok());
    }
}
