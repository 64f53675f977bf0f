//! Replays every input kept in `fuzz/regressions/<target>/` (inputs that once
//! broke an invariant, or that cover a tricky case) through its target's
//! checks, and a fixed set of edge cases through every target.

use std::path::PathBuf;

#[test]
fn kept_inputs_pass_their_checks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../regressions");
    let mut replayed = 0;
    for (target, check) in relay_fuzz_checks::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&input));
            assert!(outcome.is_ok(), "{target}: {} breaks an invariant", path.display());
            replayed += 1;
        }
    }
    eprintln!("{replayed} kept inputs replayed");
}

#[test]
fn edge_cases_pass_every_target() {
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0],
        vec![0xff; 64],
        vec![0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0],
        b"\n\n\nabc\ndef".to_vec(),
        br#"{"f0":"x","f1":1,"f2":1.5,"f3":true,"f4":"2026-11-22T00:00:00Z","f5":"00000000-0000-4000-8000-000000000000","f6":{}}"#.to_vec(),
    ];
    inputs.push(vec![7; 4096]);
    for (target, check) in relay_fuzz_checks::TARGETS {
        for input in &inputs {
            let outcome = std::panic::catch_unwind(|| check(input));
            assert!(outcome.is_ok(), "{target} on {input:?}");
        }
    }
}
