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
                // A test may build several environments: the second and later get a suffix.
                static IN_PROCESS: std::sync::atomic::AtomicU32 =
                    std::sync::atomic::AtomicU32::new(0);
                let n = IN_PROCESS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let suffix = if n == 0 {
                    String::new()
                } else {
                    format!("x{n}")
                };
                Self {
                    id: format!("{PREFIX}{run}_s{slot}{suffix}"),
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
        assert!(service::queue::QueueId::new(&a.id).is_ok());
    }
}
