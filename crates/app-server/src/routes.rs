//! The routes, shared by `main` and the tests through [`configure`].

use std::time::Duration;

use actix_web::http::header::{self, ContentType};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use protocol::{DisplayName, RoomName};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::error::AppError;
use crate::pages::{IndexPage, RoomPage};
use crate::publisher::Publisher;
use crate::settings::Settings;
use crate::ws_urls::WsUrls;

/// How long the start page waits for the room directory before rendering
/// without it.
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(1);

/// Registers every route of the app-server on `cfg`; `publisher` is the
/// service connection to the ws-server and `ws_urls` the URLs handed to
/// room pages. Both are shared handles, built once for all workers, so that
/// the rotation over `ws_urls` spans the whole server.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    settings: &Settings,
    publisher: &Publisher,
    ws_urls: &WsUrls,
) {
    let headers = security_headers(ws_urls.origins());
    cfg.app_data(web::Data::new(ws_urls.clone()))
        .app_data(web::Data::new(publisher.clone()))
        .app_data(
            web::JsonConfig::default()
                .limit(api::MAX_BODY_BYTES)
                .error_handler(api::json_error),
        )
        .app_data(web::FormConfig::default().limit(api::MAX_BODY_BYTES))
        .service(
            web::scope("")
                .wrap(headers)
                .route("/", web::get().to(index))
                .route("/join", web::get().to(join))
                .route("/announce", web::post().to(announce))
                .route("/rooms/{room}", web::get().to(room))
                .route("/api/rooms", web::get().to(api::rooms))
                .route("/api/rooms/{room}/messages", web::post().to(api::publish))
                .route("/healthz", web::get().to(healthz))
                .service(actix_files::Files::new("/static", &settings.public_dir).prefer_utf8(true))
                .default_service(web::to(not_found)),
        );
}

/// Headers on every response. The policy lets pages run only this server's
/// scripts and open WebSockets only to the configured ws-servers (all of
/// them, as any page may get any one), so even a rendering bug could not
/// run injected script or leak to other hosts.
fn security_headers(ws_origins: &[String]) -> DefaultHeaders {
    let ws_origins = ws_origins.join(" ");
    let csp = format!(
        "default-src 'self'; connect-src 'self' {ws_origins}; img-src 'self' data:; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, csp))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
}

fn html_with(
    status: actix_web::http::StatusCode,
    page: &impl Template,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(page.render()?))
}

fn html(page: &impl Template) -> Result<HttpResponse, AppError> {
    html_with(actix_web::http::StatusCode::OK, page)
}

fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The query of `/`: fields to pre-fill, and what was just announced.
#[derive(Debug, Default, Deserialize)]
struct IndexQuery {
    #[serde(default)]
    room: String,
    #[serde(default)]
    name: String,
    announced: Option<String>,
}

/// The active rooms, or `None` when the ws-server cannot say in time.
async fn directory(publisher: &Publisher) -> Option<Vec<protocol::RoomInfo>> {
    tokio::time::timeout(DIRECTORY_TIMEOUT, publisher.rooms())
        .await
        .ok()?
        .ok()
}

async fn index(
    query: web::Query<IndexQuery>,
    publisher: web::Data<Publisher>,
) -> Result<HttpResponse, AppError> {
    let notice = query
        .announced
        .as_deref()
        .and_then(|r| RoomName::new(r).ok())
        .map(|r| format!("Announced to #{r}."));
    html(&IndexPage {
        room: &query.room,
        name: &query.name,
        rooms: directory(&publisher).await,
        notice: notice.as_deref(),
        ..IndexPage::default()
    })
}

/// The fields of the name-and-room form.
#[derive(Debug, Default, Deserialize, Serialize)]
struct JoinForm {
    #[serde(default)]
    room: String,
    #[serde(default)]
    name: String,
}

/// The form's target: validates both fields, then redirects to the room's
/// page, or shows the form again with the reason and a 400.
async fn join(
    form: web::Query<JoinForm>,
    publisher: web::Data<Publisher>,
) -> Result<HttpResponse, AppError> {
    let checked = RoomName::new(form.room.trim())
        .map_err(AppError::InvalidRoom)
        .and_then(|room| {
            DisplayName::new(form.name.trim())
                .map(|name| (room, name))
                .map_err(AppError::InvalidName)
        });
    match checked {
        Ok((room, name)) => Ok(see_other(room_path(&room, &name))),
        Err(e) => {
            let reason = e.to_string();
            let page = IndexPage {
                room: &form.room,
                name: &form.name,
                error: Some(&reason),
                rooms: directory(&publisher).await,
                ..IndexPage::default()
            };
            html_with(actix_web::http::StatusCode::BAD_REQUEST, &page)
        }
    }
}

/// `/rooms/{room}?name={name}`, with the name URL-encoded.
fn room_path(room: &RoomName, name: &DisplayName) -> String {
    let query = serde_urlencoded::to_string([("name", name.as_str())]).unwrap_or_default();
    format!("/rooms/{room}?{query}")
}

/// The announcement form's fields.
#[derive(Debug, Deserialize)]
struct AnnounceForm {
    #[serde(default)]
    room: String,
    #[serde(default)]
    text: String,
}

/// Refuses a form posted from another origin. Browsers send `Origin` with
/// every cross-site POST, and another site's page could otherwise make a
/// visitor's browser publish (cross-site request forgery).
fn same_origin(request: &HttpRequest) -> Result<(), AppError> {
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return Ok(()); // not from a browser page
    };
    let info = request.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    if origin.to_str().is_ok_and(|o| o.eq_ignore_ascii_case(&own)) {
        Ok(())
    } else {
        Err(AppError::CrossSite)
    }
}

/// `POST /announce`: the start page's announcement form. Publishes, then
/// redirects to the start page with a confirmation; on failure shows the
/// form again with the reason and the API's status.
async fn announce(
    request: HttpRequest,
    form: web::Form<AnnounceForm>,
    publisher: web::Data<Publisher>,
) -> Result<HttpResponse, AppError> {
    same_origin(&request)?;
    let form = form.into_inner();
    let result = match api::validate(form.room.trim(), None, form.text.clone()) {
        Ok((room, name, text)) => publisher
            .publish(room.clone(), name, text)
            .await
            .map(|_| room)
            .map_err(api::ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(room) => {
            let query =
                serde_urlencoded::to_string([("announced", room.as_str())]).unwrap_or_default();
            Ok(see_other(format!("/?{query}")))
        }
        Err(e) => {
            let reason = e.to_string();
            let page = IndexPage {
                rooms: directory(&publisher).await,
                announce_room: &form.room,
                announce_text: &form.text,
                announce_error: Some(&reason),
                ..IndexPage::default()
            };
            html_with(e.status_code(), &page)
        }
    }
}

#[derive(Debug, Deserialize)]
struct RoomQuery {
    name: Option<String>,
}

async fn room(
    path: web::Path<String>,
    query: web::Query<RoomQuery>,
    ws_urls: web::Data<WsUrls>,
) -> Result<HttpResponse, AppError> {
    let room = RoomName::new(path.into_inner()).map_err(AppError::InvalidRoom)?;
    let Some(name) = query.name.as_deref().filter(|n| !n.is_empty()) else {
        // No name yet: ask for one, with the room filled in.
        let query = serde_urlencoded::to_string([("room", room.as_str())]).unwrap_or_default();
        return Ok(see_other(format!("/?{query}")));
    };
    let name = DisplayName::new(name).map_err(AppError::InvalidName)?;
    html(&RoomPage {
        room: room.as_str(),
        name: name.as_str(),
        ws_url: ws_urls.next(),
    })
}

/// Liveness of the app-server itself (always 200 while it serves), plus
/// whether its service connection to the ws-server is open.
async fn healthz(publisher: web::Data<Publisher>) -> HttpResponse {
    let ws = if publisher.is_connected() {
        "connected"
    } else {
        "disconnected"
    };
    HttpResponse::Ok().json(serde_json::json!({"status": "ok", "ws": ws}))
}

async fn not_found() -> HttpResponse {
    AppError::NotFound.error_response()
}
