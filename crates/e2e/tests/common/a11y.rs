//! Accessibility checks of a page in the browser: axe-core's WCAG 2.x A/AA
//! and best-practice rules, and the media a page is viewed under (light or
//! dark colour scheme, a desktop or a phone's viewport) emulated through the
//! Chrome DevTools Protocol.
//!
//! axe-core is not vendored: `npm ci` in `crates/e2e` installs the version
//! `package-lock.json` pins (`cargo xtask test` does it), and each check
//! reads it from `node_modules`.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use fantoccini::Client;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

/// The rule tags every page is held to: WCAG 2.0, 2.1 and 2.2 at levels A
/// and AA, and axe's best practices.
pub const AXE_TAGS: [&str; 6] = [
    "wcag2a",
    "wcag2aa",
    "wcag21a",
    "wcag21aa",
    "wcag22aa",
    "best-practice",
];

/// Where `npm ci` puts axe-core's browser build.
fn axe_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js")
}

/// axe-core's source, read once per test binary. Fails, naming the install
/// command, when it is missing: a skipped check would hide a broken page.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = axe_path();
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {} ({e}); install axe-core with: \
                 (cd crates/e2e && npm ci), or run `cargo xtask test`, which does it",
                path.display()
            )
        })
    })
}

/// One rule a page breaks, as axe reports it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule, e.g. `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for, in a line.
    pub help: String,
    /// Each element that breaks it.
    pub nodes: Vec<ViolationNode>,
}

/// One element breaking a rule.
#[derive(Debug, Clone)]
pub struct ViolationNode {
    /// CSS selectors leading to the element (through frames and shadow
    /// roots, one per level).
    pub target: Vec<String>,
    /// What is wrong with it and how to fix it, in axe's words.
    pub failure_summary: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({}): {}", self.id, self.impact, self.help)?;
        for node in &self.nodes {
            writeln!(f, "    at {}", node.target.join(" >> "))?;
            for line in node.failure_summary.lines() {
                writeln!(f, "      {line}")?;
            }
        }
        Ok(())
    }
}

/// Runs axe-core on the page as it is now and returns what it finds against
/// [`AXE_TAGS`].
pub async fn axe_violations(page: &Client) -> Vec<Violation> {
    // Injected on every call: a navigation drops it with the old document.
    page.execute(axe_source(), vec![]).await.unwrap();
    let result = page
        .execute_async(
            r"const [tags, done] = arguments;
            axe.run(document, { runOnly: { type: 'tag', values: tags } })
              .then((r) => done({ violations: r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
              })) }))
              .catch((e) => done({ error: String(e) }));",
            vec![json!(AXE_TAGS)],
        )
        .await
        .unwrap();
    if let Some(error) = result.get("error") {
        panic!("axe.run failed: {error}");
    }
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    result["violations"]
        .as_array()
        .expect("axe returns a list of violations")
        .iter()
        .map(|v| Violation {
            id: text(v, "id"),
            impact: text(v, "impact"),
            help: text(v, "help"),
            nodes: v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| ViolationNode {
                    // A target level is a selector, or a list of them inside
                    // a shadow root.
                    target: n["target"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_owned))
                        .collect(),
                    failure_summary: text(n, "failureSummary"),
                })
                .collect(),
        })
        .collect()
}

/// Fails, listing each rule and element, when axe finds anything on the
/// page; `label` says which page and conditions.
pub async fn assert_no_violations(page: &Client, label: &str) {
    let violations = axe_violations(page).await;
    assert!(
        violations.is_empty(),
        "{}",
        report(label, &violations).unwrap_or_default()
    );
}

/// The readable list of `violations` found on `label`, or `None` when there
/// are none.
pub fn report(label: &str, violations: &[Violation]) -> Option<String> {
    if violations.is_empty() {
        return None;
    }
    let mut text = format!("{label}: {} axe violation(s)\n", violations.len());
    for violation in violations {
        text.push_str(&format!("  {violation}"));
    }
    Some(text)
}

/// A Chrome DevTools Protocol command, sent through chromedriver's
/// `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.expect("a CDP command needs a session");
        base_url.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (hyper::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// Sends the CDP command `cmd` with `params` to the page's tab.
async fn cdp(page: &Client, cmd: &'static str, params: Value) -> Value {
    page.issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
}

/// Makes the page's tab report `prefers-color-scheme: scheme` (`"light"` or
/// `"dark"`) from now on, across navigations, and checks that the current
/// document sees it.
pub async fn set_color_scheme(page: &Client, scheme: &str) {
    assert!(
        matches!(scheme, "light" | "dark"),
        "no such colour scheme: {scheme}"
    );
    cdp(
        page,
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
    )
    .await;
    let dark = page
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        dark,
        json!(scheme == "dark"),
        "the emulated colour scheme ({scheme}) did not take"
    );
}

/// Makes the page's tab a `width`×`height` CSS-pixel viewport from now on,
/// across navigations: a phone's (touch, `<meta name=viewport>` honoured)
/// under 600 pixels wide, a desktop's otherwise. Checks that the current
/// document sees the width (a phone lays out a document without that meta
/// element, such as `about:blank`, 980 pixels wide: there the screen's
/// width is checked).
pub async fn set_viewport(page: &Client, width: u32, height: u32) {
    let mobile = width < 600;
    cdp(
        page,
        "Emulation.setDeviceMetricsOverride",
        json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": mobile,
        }),
    )
    .await;
    let seen = page
        .execute(
            "const [mobile] = arguments;
            const fixed = !mobile || document.querySelector('meta[name=viewport]');
            return fixed ? window.innerWidth : screen.width;",
            vec![json!(mobile)],
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        json!(width),
        "the emulated viewport ({width}×{height}) did not take"
    );
}

/// Fails when the page scrolls sideways (see [`sideways_scroll`]), naming
/// each offender; `label` says which page and conditions.
pub async fn assert_no_sideways_scroll(page: &Client, label: &str) {
    let offenders = sideways_scroll(page).await;
    assert!(
        offenders.is_empty(),
        "{label} scrolls sideways:\n  {}",
        offenders.join("\n  ")
    );
}

/// What makes the page scroll sideways, one line each: the document being
/// wider than the viewport (with the elements past its right edge), and
/// each element that scrolls on its own (`overflow-x: auto` or `scroll`)
/// holding content wider than its box.
pub async fn sideways_scroll(page: &Client) -> Vec<String> {
    let offenders = page
        .execute(
            r"const describe = (el) => el.tagName.toLowerCase()
                + (el.id ? '#' + el.id : '')
                + (el.dataset.testid ? `[data-testid=${el.dataset.testid}]` : '')
                + [...el.classList].map((c) => '.' + c).join('');
            const found = [];
            const root = document.documentElement;
            // Against the viewport asked for, not innerWidth: a phone's
            // viewport widens to fit content that overflows it.
            const viewport = Math.min(window.innerWidth, visualViewport.width * visualViewport.scale);
            if (root.scrollWidth > viewport) {
              // Name the elements reaching past the right edge, outermost first.
              const wide = [...document.body.querySelectorAll('*')]
                .filter((el) => el.getBoundingClientRect().right > viewport + 0.5)
                .filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= viewport + 0.5);
              found.push(`the document is ${root.scrollWidth}px wide in a ${viewport}px viewport`
                + (wide.length ? '; past the edge: ' + wide.slice(0, 5).map(describe).join(', ') : ''));
            }
            for (const el of document.querySelectorAll('body *')) {
              const overflow = getComputedStyle(el).overflowX;
              if ((overflow === 'auto' || overflow === 'scroll') && el.scrollWidth > el.clientWidth) {
                found.push(`${describe(el)} scrolls sideways: ${el.scrollWidth}px of content in ${el.clientWidth}px`);
              }
            }
            return found;",
            vec![],
        )
        .await
        .unwrap();
    offenders
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}
