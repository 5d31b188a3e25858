//! The operator's live dashboard: `GET /dashboard` (the page) and
//! `GET /dashboard/events`, a server-sent-events stream of what every
//! ws-server instance's admin port says (see [`crate::fleet`]), one
//! `stats` event per poll. The page draws it as it arrives: nothing is
//! reloaded.
//!
//! Both need the operator's session; without one the page leads to the
//! sign-in and the stream answers 401.

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;

use crate::error::AppError;
use crate::fleet::Fleet;
use crate::operator;
use crate::pages::DashboardPage;
use crate::routes::{html_with, see_other};
use crate::site::Site;

/// How recent the last round must be to be sent to a page at once.
const REPLAY_WITHIN_MS: u64 = 2000;

/// `GET /dashboard`.
///
/// # Errors
/// When the page cannot be rendered.
pub async fn page(request: HttpRequest, site: web::Data<Site>) -> Result<HttpResponse, AppError> {
    if !operator::is_operator(&request, &site) {
        return Ok(see_other("/operator".to_owned()));
    }
    html_with(actix_web::http::StatusCode::OK, &DashboardPage {})
}

/// `GET /dashboard/events`.
pub async fn events(
    request: HttpRequest,
    site: web::Data<Site>,
    fleet: web::Data<Fleet>,
) -> HttpResponse {
    let Some(session_ends) = operator::session_ends(&request, &site) else {
        return HttpResponse::Unauthorized().json(json!({"error": {
            "code": "unauthorized",
            "message": "sign in as the operator at /operator first",
        }}));
    };
    let mut snapshots = fleet.watch();
    // A page opened while others watch gets the last round at once rather
    // than a second later; an older one (nobody watched since) is not news.
    let last = snapshots.borrow().at;
    if last.saturating_add(REPLAY_WITHIN_MS) > protocol::now_millis() {
        snapshots.mark_changed();
    }
    // The stream ends with the operator's session, or when the server stops.
    let session_left =
        Duration::from_secs(session_ends.saturating_sub(protocol::token::now_secs()));
    let stopped = fleet.stopped();
    let end = async move {
        tokio::select! {
            () = stopped => {}
            () = tokio::time::sleep(session_left) => {}
        }
    };
    let stream = futures_util::stream::unfold(snapshots, |mut snapshots| async move {
        // Ends when the poller is gone, which only a stopping server does.
        snapshots.changed().await.ok()?;
        let data = serde_json::to_string(&**snapshots.borrow_and_update()).ok()?;
        let event = Bytes::from(format!("event: stats\ndata: {data}\n\n"));
        Some((Ok::<_, actix_web::Error>(event), snapshots))
    })
    .take_until(end);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // A proxy that buffers responses (nginx does by default) would
        // hold the events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}
