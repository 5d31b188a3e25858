//! Running cargo and finding (or installing) what the tests need.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian packages the browser tests need.
const BROWSER_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

/// The workspace root, where every command runs.
pub fn root() -> PathBuf {
    // xtask lives in <root>/xtask.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The cargo that invoked us, so toolchain overrides carry through.
pub fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs `cargo ARGS` in the workspace root.
pub fn cargo(args: &[&str]) -> Result<(), String> {
    run(Command::new(cargo_bin()).args(args).current_dir(root()))
}

/// Runs a command to completion, failing on a non-zero exit.
pub fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    eprintln!("xtask: running {shown}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// Whether `program` is on the PATH (or is an existing path).
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Installs Debian `packages` with apt when running as root where apt
/// exists; `Ok(false)` when it cannot, so the caller can say what to run.
fn apt_install(why: &str, packages: &[&str]) -> Result<bool, String> {
    if !(is_root() && on_path("apt-get")) {
        return Ok(false);
    }
    eprintln!("xtask: {why}; installing {}", packages.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(true)
}

/// Makes sure Chromium and chromedriver are installed: installs them with
/// apt when running as root on Debian or Ubuntu, and otherwise stops with
/// the exact line to run. The browser tests are never skipped silently.
pub fn ensure_browser() -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
    if on_path(&chromium) && on_path(&driver) {
        return Ok(());
    }
    if apt_install("the browser tests need Chromium", &BROWSER_PACKAGES)? {
        return Ok(());
    }
    let line = format!("apt-get install -y {}", BROWSER_PACKAGES.join(" "));
    Err(format!(
        "the browser tests need Chromium and chromedriver, which are missing; install them with:\n    sudo {line}\n(or set CHROMIUM and CHROMEDRIVER to their paths)"
    ))
}

/// Makes sure Node.js 20.11 or newer (its test runner mocks timers and
/// dates) is installed, which runs the browser client's unit tests:
/// installs the distribution's when running as root with apt, and
/// otherwise stops with the line to run; an older one stops with how to
/// get a newer.
pub fn ensure_node() -> Result<(), String> {
    if !on_path("node") && !apt_install("the JavaScript tests need Node.js", &["nodejs"])? {
        return Err("the JavaScript tests need Node.js 20.11 or newer, which is missing; install it with:\n    sudo apt-get install -y nodejs".to_owned());
    }
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    match node_version(&version) {
        Some(found) if found >= (20, 11) => Ok(()),
        _ => Err(format!(
            "the JavaScript tests need Node.js 20.11 or newer; this node says {version:?} \
             (Debian 12's own nodejs is 18): install Node.js 20 or newer from \
             https://nodejs.org or NodeSource's packages"
        )),
    }
}

/// `(major, minor)` from `node --version`'s `vMAJOR.MINOR.PATCH`.
fn node_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.strip_prefix('v')?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Makes sure npm is installed, which installs the browser tests' axe-core
/// (crates/e2e/package-lock.json): NodeSource's `nodejs` carries it, Debian's
/// comes as the separate `npm` package, installed with apt when running as
/// root, and otherwise this stops with the line to run.
pub fn ensure_npm() -> Result<(), String> {
    if on_path("npm") || apt_install("the accessibility tests need npm", &["npm"])? {
        return Ok(());
    }
    Err("the accessibility tests need npm, which is missing; install it with:\n    sudo apt-get install -y npm".to_owned())
}

/// Runs `npm ci` in `dir` when its `node_modules` is missing or older than
/// its `package.json` or `package-lock.json` (npm writes
/// `node_modules/.package-lock.json` at each install), so that what is
/// installed is exactly what the lockfile pins.
pub fn npm_ci_if_stale(dir: &Path) -> Result<(), String> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let wanted = [dir.join("package.json"), dir.join("package-lock.json")]
        .iter()
        .filter_map(|path| modified(path))
        .max();
    let fresh =
        matches!((installed, wanted), (Some(installed), Some(wanted)) if installed >= wanted);
    if fresh {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir))
}

/// Makes sure `redis-server` is installed, which `dev --scale` runs and the
/// ws-server's Redis engine tests start on free ports: installs Debian's
/// when running as root with apt, and otherwise stops with the line to run.
pub fn ensure_redis() -> Result<(), String> {
    if on_path("redis-server") || apt_install("Redis is needed", &["redis-server"])? {
        return Ok(());
    }
    Err("Redis (redis-server) is needed and missing; install it with:\n    sudo apt-get install -y redis-server".to_owned())
}

#[cfg(test)]
mod tests {
    use super::node_version;

    #[test]
    fn node_versions_are_read_as_major_and_minor() {
        assert_eq!(node_version("v20.20.2"), Some((20, 20)));
        assert_eq!(node_version("v18.20.4"), Some((18, 20)));
        assert!(node_version("v18.20.4") < Some((20, 11)));
        assert!(node_version("v21.0.0") >= Some((20, 11)));
        assert_eq!(node_version("20.1.0"), None);
        assert_eq!(node_version(""), None);
    }
}
