//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use segan::parity::{find_cases, run_case_file, Comparison, RunOptions};

/// Folder of the committed fixtures.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Lists the CPU cases whose file name starts with `prefix`.
pub fn cpu_cases(prefix: &str) -> Vec<PathBuf> {
    let cases: Vec<PathBuf> = find_cases(&[fixtures().join("cpu")])
        .expect("fixtures/cpu is readable")
        .into_iter()
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(prefix))
        })
        .collect();
    assert!(
        !cases.is_empty(),
        "no fixtures/cpu/{prefix}*.npz cases found"
    );
    cases
}

/// Runs every case and panics with the failing rows, if any.
pub fn assert_cases_pass(cases: &[PathBuf], options: RunOptions) {
    let mut failures: Vec<String> = Vec::new();
    let mut compared = 0;
    for path in cases {
        let rows: Vec<Comparison> = run_case_file(path, options)
            .unwrap_or_else(|error| panic!("{}: {error:#}", path.display()));
        assert!(
            !rows.is_empty(),
            "{}: no tensor was compared",
            path.display()
        );
        compared += rows.len();
        for row in rows.iter().filter(|row| !row.pass) {
            failures.push(format!(
                "{} {}: max abs {:.3e}, max rel {:.3e}, tolerance {} {}",
                row.case,
                row.tensor,
                row.max_abs,
                row.max_rel,
                row.tolerance,
                row.note.as_deref().unwrap_or("")
            ));
        }
    }
    assert!(compared > 0);
    assert!(
        failures.is_empty(),
        "parity failures:\n{}",
        failures.join("\n")
    );
}
