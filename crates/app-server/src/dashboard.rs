//! The operator's live dashboard: `GET /dashboard` (the page) and
//! `GET /dashboard/events`, a server-sent-events stream of what every
//! ws-server instance's admin port says (see [`crate::fleet`]), one
//! `stats` event per poll. The page draws it as it arrives: nothing is
//! reloaded.
//!
//! Both need the operator's session; without one the page leads to the
//! sign-in and the stream answers 401.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::error::AppError;
use crate::fleet::Fleet;
use crate::operator;
use crate::pages::DashboardPage;
use crate::routes::{html_with, see_other};
use crate::site::Site;

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
    if !operator::is_operator(&request, &site) {
        return HttpResponse::Unauthorized().json(json!({"error": {
            "code": "unauthorized",
            "message": "sign in as the operator at /operator first",
        }}));
    }
    let mut snapshots = fleet.watch();
    // A page opened while others watch gets the last round at once rather
    // than a second later.
    if !snapshots.borrow().instances.is_empty() {
        snapshots.mark_changed();
    }
    let stream = futures_util::stream::unfold(snapshots, |mut snapshots| async move {
        // Ends when the poller is gone, which only a stopping server does.
        snapshots.changed().await.ok()?;
        let data = serde_json::to_string(&**snapshots.borrow_and_update()).ok()?;
        let event = Bytes::from(format!("event: stats\ndata: {data}\n\n"));
        Some((Ok::<_, actix_web::Error>(event), snapshots))
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // A proxy that buffers responses (nginx does by default) would
        // hold the events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}
