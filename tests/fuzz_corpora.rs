//! The fuzz targets' seed corpora and every input a fuzzer ever found (`fuzz/regressions/`),
//! replayed through the same entry points on the stable toolchain: no panic, and each seed is
//! accepted by the parser it seeds, so the fuzzers start past the first error. See
//! `fuzz/README.md` for running the coverage-guided targets.

use std::path::{Path, PathBuf};

use confidant::fuzz_support as targets;

type Target = fn(&[u8]) -> bool;

const TARGETS: [(&str, Target); 9] = [
    ("bearer_token", targets::bearer_token),
    ("jwks", targets::jwks),
    ("discovery", targets::discovery),
    ("www_authenticate", targets::www_authenticate),
    ("pem", targets::pem),
    ("pkcs12", targets::pkcs12),
    ("msal_cache", targets::msal_cache),
    ("token_response", targets::token_response),
    ("key_vault", targets::key_vault),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn every_seed_is_accepted_by_the_parser_it_seeds() {
    for (name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed");
        for seed in seeds {
            let bytes = std::fs::read(&seed).expect("seed");
            assert!(target(&bytes), "{} is not accepted", seed.display());
        }
    }
}

#[test]
fn every_input_a_fuzzer_found_is_handled() {
    for (name, target) in TARGETS {
        for input in files(&fuzz_dir().join("regressions").join(name)) {
            let bytes = std::fs::read(&input).expect("input");
            // The finding was a panic, hang or blow-up; returning at all is the fix.
            let _ = target(&bytes);
        }
    }
}

#[test]
fn truncations_and_bit_flips_of_every_seed_are_handled() {
    // A cheap, deterministic stand-in for the fuzzer on every test run.
    for (name, target) in TARGETS {
        for seed in files(&fuzz_dir().join("corpus").join(name)) {
            let bytes = std::fs::read(&seed).expect("seed");
            let step = (bytes.len() / 16).max(1);
            for cut in (0..bytes.len()).step_by(step) {
                let _ = target(&bytes[..cut]);
                let mut flipped = bytes.clone();
                flipped[cut] ^= 0x5a;
                let _ = target(&flipped);
            }
        }
    }
}
