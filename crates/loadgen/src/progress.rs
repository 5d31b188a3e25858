//! A progress bar on stderr for phases long enough to wonder about.
//!
//! Only phases planned to last more than [`MIN_SHOWN`] get one; indicatif
//! draws nothing when stderr is not a terminal, so logs stay clean.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Phases shorter than this run without a bar.
const MIN_SHOWN: Duration = Duration::from_secs(3);

/// How often the bar redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// A bar that fills as a timed phase passes; cleared when dropped.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// A bar for a phase of `length` named `label`, or none if the phase
    /// is short.
    #[must_use]
    pub fn timed(label: &str, length: Duration) -> Self {
        if length <= MIN_SHOWN {
            return Self {
                bar: None,
                ticker: None,
            };
        }
        let millis = u64::try_from(length.as_millis()).unwrap_or(u64::MAX);
        let bar = ProgressBar::with_draw_target(Some(millis), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{label} ({:.0}s)", length.as_secs_f64()));
        let ticking = bar.clone();
        let ticker = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(REDRAW_EVERY).await;
                let done = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                ticking.set_position(done.min(millis));
            }
        });
        Self {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
