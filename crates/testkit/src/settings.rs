//! The start-up check both servers share: a bad setting stops the binary
//! before it binds, with one line that names the setting.

use std::process::Command;

/// Each bad setting (environment variables) and what its one line must say.
pub type BadSettings<'a> = &'a [(&'a [(&'a str, &'a str)], &'a str)];

/// Runs `binary --print-config` with only `base` and then each entry's
/// variables in its environment, and asserts that it refuses each: a
/// failure status, nothing on stdout, one line on stderr holding the
/// entry's text.
///
/// # Panics
/// When the binary cannot run, or accepts a bad setting or says it
/// otherwise.
pub fn assert_each_refused(binary: &str, base: &[(&str, &str)], table: BadSettings<'_>) {
    for (env, expected) in table {
        let out = Command::new(binary)
            .arg("--print-config")
            .env_clear()
            .envs(base.iter().copied())
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("{binary} did not run: {e}"));
        assert!(!out.status.success(), "{env:?} was accepted: {out:?}");
        assert!(out.stdout.is_empty(), "{env:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "{env:?}: expected {expected:?} in {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: {stderr}");
    }
}
