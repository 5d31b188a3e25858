//! The routes, shared by `main` and the tests through [`configure`].

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use protocol::token::Role;
use protocol::{DisplayName, RoomName, UserId};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::api_key::require_api_key;
use crate::body_timeout::read_body_in_time;
use crate::dashboard;
use crate::error::AppError;
use crate::fleet::Fleet;
use crate::identity;
use crate::metrics::{self, AppMetrics};
use crate::operator;
use crate::pages::{AnnouncePage, IndexPage, RoomPage};
use crate::public_origin::refuse_misdirected;
use crate::publisher::{Publisher, RoomsPage};
use crate::site::Site;
use crate::tokens;
use crate::ws_urls::WsUrls;

/// How long the start page waits for the room directory before rendering
/// without it.
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(1);

/// Registers every route of the app-server on `cfg`; `site` holds the
/// checked settings, `publisher` is the service connection to the
/// ws-server, `ws_urls` the URLs handed to room pages, `fleet` the poller
/// of the ws-servers' admin ports (for the dashboard) and `metrics` what
/// `/metrics` shows. All are shared handles, built once for all workers,
/// so that the rotation over `ws_urls` spans the whole server.
///
/// Every route but `/healthz`, `/readyz` and `/metrics` answers only for
/// the public origin's host (421 otherwise); `/api` needs the API key before anything else; the
/// bodies of forms and API requests must arrive within `body_timeout`.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    site: &Site,
    publisher: &Publisher,
    ws_urls: &WsUrls,
    fleet: &Fleet,
    metrics: &web::Data<AppMetrics>,
) {
    let headers = security_headers(ws_urls.origins());
    cfg.app_data(web::Data::new(ws_urls.clone()))
        .app_data(web::Data::new(fleet.clone()))
        .app_data(metrics.clone())
        .app_data(web::Data::new(publisher.clone()))
        .app_data(web::Data::new(site.clone()))
        .app_data(
            web::JsonConfig::default()
                .limit(api::MAX_BODY_BYTES)
                .error_handler(api::json_error),
        )
        .app_data(web::FormConfig::default().limit(api::MAX_BODY_BYTES))
        .service(
            web::scope("")
                .wrap(headers)
                .wrap(from_fn(refuse_misdirected))
                // Outermost: every answer counts, refusals included.
                .wrap(from_fn(metrics::record))
                .route("/", web::get().to(index))
                .route("/join", web::get().to(join))
                .service(
                    web::resource("/announce")
                        .wrap(from_fn(read_body_in_time))
                        .route(web::get().to(announce_page))
                        .route(web::post().to(announce)),
                )
                .service(
                    web::resource("/operator")
                        .wrap(from_fn(read_body_in_time))
                        .route(web::get().to(operator::page))
                        .route(web::post().to(operator::sign_in)),
                )
                .service(
                    web::resource("/operator/sign-out")
                        .wrap(from_fn(read_body_in_time))
                        .route(web::post().to(operator::sign_out)),
                )
                .route("/dashboard", web::get().to(dashboard::page))
                .route("/dashboard/events", web::get().to(dashboard::events))
                .route("/rooms/{room}", web::get().to(room))
                .route("/token", web::get().to(tokens::refresh))
                .service(
                    // Middleware runs outside in: the key is checked before
                    // the body is read.
                    web::scope("/api")
                        .wrap(from_fn(read_body_in_time))
                        .wrap(from_fn(require_api_key))
                        .route("/rooms", web::get().to(api::rooms))
                        .route("/rooms/{room}/messages", web::post().to(api::publish)),
                )
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .service(
                    web::resource("/metrics")
                        .wrap(from_fn(require_api_key))
                        .route(web::get().to(metrics::scrape)),
                )
                .service(actix_files::Files::new("/static", &site.public_dir).prefer_utf8(true))
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

pub(crate) fn html_with(
    status: StatusCode,
    page: &impl Template,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(page.render()?))
}

fn html(page: &impl Template) -> Result<HttpResponse, AppError> {
    html_with(StatusCode::OK, page)
}

pub(crate) fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The query of `/`: fields to pre-fill.
#[derive(Debug, Default, Deserialize)]
struct IndexQuery {
    #[serde(default)]
    room: String,
    #[serde(default)]
    name: String,
}

/// The first page of active rooms, or `None` when the ws-server cannot say
/// in time. Only the first: the start page shows a glimpse, not a
/// directory that grows with the deployment.
async fn directory(publisher: &Publisher) -> Option<RoomsPage> {
    tokio::time::timeout(DIRECTORY_TIMEOUT, publisher.rooms(None))
        .await
        .ok()?
        .ok()
}

/// An index page showing `directory`.
fn with_directory<'a>(page: IndexPage<'a>, directory: Option<RoomsPage>) -> IndexPage<'a> {
    IndexPage {
        more_rooms: directory.as_ref().is_some_and(|d| d.next.is_some()),
        rooms: directory.map(|d| d.rooms),
        ..page
    }
}

async fn index(
    query: web::Query<IndexQuery>,
    publisher: web::Data<Publisher>,
) -> Result<HttpResponse, AppError> {
    let page = IndexPage {
        room: &query.room,
        name: &query.name,
        ..IndexPage::default()
    };
    html(&with_directory(page, directory(&publisher).await))
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
                ..IndexPage::default()
            };
            let page = with_directory(page, directory(&publisher).await);
            html_with(StatusCode::BAD_REQUEST, &page)
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

/// The query of `GET /announce`: what was just announced.
#[derive(Debug, Deserialize)]
struct AnnounceQuery {
    announced: Option<String>,
}

/// `GET /announce`: the announcement form, for a signed-in operator; anyone
/// else is sent to the sign-in.
async fn announce_page(
    request: HttpRequest,
    query: web::Query<AnnounceQuery>,
    site: web::Data<Site>,
) -> Result<HttpResponse, AppError> {
    if !operator::is_operator(&request, &site) {
        return Ok(see_other("/operator".to_owned()));
    }
    let notice = query
        .announced
        .as_deref()
        .and_then(|r| RoomName::new(r).ok())
        .map(|r| format!("Announced to #{r}."));
    html(&AnnouncePage {
        notice: notice.as_deref(),
        ..AnnouncePage::default()
    })
}

/// `POST /announce`: publishes, then redirects to the form with a
/// confirmation; on failure shows the form again with the reason and the
/// API's status. Only from this site's pages (403) and for a signed-in
/// operator (401).
async fn announce(
    request: HttpRequest,
    form: web::Form<AnnounceForm>,
    publisher: web::Data<Publisher>,
    site: web::Data<Site>,
) -> Result<HttpResponse, AppError> {
    site.origin.check_same_origin(&request)?;
    if !operator::is_operator(&request, &site) {
        return Err(AppError::NotOperator);
    }
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
            Ok(see_other(format!("/announce?{query}")))
        }
        Err(e) => {
            let reason = e.to_string();
            let page = AnnouncePage {
                room: &form.room,
                text: &form.text,
                error: Some(&reason),
                ..AnnouncePage::default()
            };
            html_with(e.status_code(), &page)
        }
    }
}

#[derive(Debug, Deserialize)]
struct RoomQuery {
    name: Option<String>,
}

/// `GET /rooms/{room}?name=NAME`: the chat page, with a member token for
/// the browser's user (from its `duplex_user` cookie; a fresh user and
/// cookie when it has no valid one) shown as `name`.
async fn room(
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<RoomQuery>,
    ws_urls: web::Data<WsUrls>,
    site: web::Data<Site>,
) -> Result<HttpResponse, AppError> {
    let room = RoomName::new(path.into_inner()).map_err(AppError::InvalidRoom)?;
    let Some(name) = query.name.as_deref().filter(|n| !n.is_empty()) else {
        // No name yet: ask for one, with the room filled in.
        let query = serde_urlencoded::to_string([("room", room.as_str())]).unwrap_or_default();
        return Ok(see_other(format!("/?{query}")));
    };
    let name = DisplayName::new(name).map_err(AppError::InvalidName)?;
    let (user, new_cookie) = match identity::user_of(&request, &site.secret, site.origin.is_https())
    {
        Some(user) => (user, None),
        None => {
            let user = UserId::generate();
            let cookie = identity::user_cookie(&user, &site.secret, site.origin.is_https());
            (user, Some(cookie))
        }
    };
    let minted = tokens::mint(
        &site.secret,
        user,
        name.clone(),
        Role::Member,
        site.token_ttl,
    );
    let token_url = format!(
        "/token?{}",
        serde_urlencoded::to_string([("name", name.as_str())]).unwrap_or_default()
    );
    let page = RoomPage {
        room: room.as_str(),
        name: name.as_str(),
        ws_url: ws_urls.next(),
        token: &minted.token,
        token_url: &token_url,
    };
    let mut response = HttpResponse::Ok()
        .content_type(ContentType::html())
        // The page holds a token: no cache keeps it, and a cached copy
        // would hand another visitor this user's token.
        .insert_header(tokens::no_store())
        .body(page.render()?);
    if let Some(cookie) = new_cookie {
        response.add_cookie(&cookie).map_err(|_| AppError::Cookie)?;
    }
    Ok(response)
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

/// `GET /readyz`: 200 while the service connection to the ws-server is
/// open (publishing and the room directory work), else 503 with why.
async fn readyz(publisher: web::Data<Publisher>) -> HttpResponse {
    let status = publisher.status();
    if status.connected {
        HttpResponse::Ok().json(serde_json::json!({"ready": true}))
    } else {
        let why = status
            .last_error
            .unwrap_or_else(|| "not connected yet".to_owned());
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "ready": false,
            "reason": format!("the service connection to the ws-server is down: {why}"),
        }))
    }
}

async fn not_found() -> HttpResponse {
    AppError::NotFound.error_response()
}
