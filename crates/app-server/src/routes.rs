//! The routes, shared by `main` and the tests through [`configure`].

use actix_web::http::header::{self, ContentType};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};
use askama::Template;
use protocol::{DisplayName, RoomName};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::pages::{IndexPage, RoomPage};
use crate::settings::Settings;

/// What the handlers need from the settings.
#[derive(Debug, Clone)]
struct PageConfig {
    ws_url: String,
}

/// Registers every route of the app-server on `cfg`.
///
/// # Errors
/// [`crate::settings::SettingsError`] when `settings.ws_url` is not a
/// WebSocket URL (the Content-Security-Policy is built from it).
pub fn configure(
    cfg: &mut web::ServiceConfig,
    settings: &Settings,
) -> Result<(), crate::settings::SettingsError> {
    let headers = security_headers(&settings.ws_origin()?);
    cfg.app_data(web::Data::new(PageConfig {
        ws_url: settings.ws_url.clone(),
    }))
    .service(
        web::scope("")
            .wrap(headers)
            .route("/", web::get().to(index))
            .route("/join", web::get().to(join))
            .route("/rooms/{room}", web::get().to(room))
            .route("/healthz", web::get().to(healthz))
            .service(actix_files::Files::new("/static", &settings.public_dir).prefer_utf8(true))
            .default_service(web::to(not_found)),
    );
    Ok(())
}

/// Headers on every response. The policy lets pages run only this server's
/// scripts and open WebSockets only to the configured ws-server, so even a
/// rendering bug could not run injected script or leak to other hosts.
fn security_headers(ws_origin: &str) -> DefaultHeaders {
    let csp = format!(
        "default-src 'self'; connect-src 'self' {ws_origin}; img-src 'self' data:; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, csp))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
}

fn html(page: &impl Template) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(page.render()?))
}

/// The fields of the name-and-room form; also the query of `/`, which
/// pre-fills it.
#[derive(Debug, Default, Deserialize, Serialize)]
struct JoinForm {
    #[serde(default)]
    room: String,
    #[serde(default)]
    name: String,
}

async fn index(query: web::Query<JoinForm>) -> Result<HttpResponse, AppError> {
    html(&IndexPage {
        room: &query.room,
        name: &query.name,
        error: None,
    })
}

/// The form's target: validates both fields, then redirects to the room's
/// page, or shows the form again with the reason and a 400.
async fn join(form: web::Query<JoinForm>) -> Result<HttpResponse, AppError> {
    let checked = RoomName::new(form.room.trim())
        .map_err(AppError::InvalidRoom)
        .and_then(|room| {
            DisplayName::new(form.name.trim())
                .map(|name| (room, name))
                .map_err(AppError::InvalidName)
        });
    match checked {
        Ok((room, name)) => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, room_path(&room, &name)))
            .finish()),
        Err(e) => {
            let reason = e.to_string();
            let page = IndexPage {
                room: &form.room,
                name: &form.name,
                error: Some(&reason),
            };
            Ok(HttpResponse::BadRequest()
                .content_type(ContentType::html())
                .body(page.render()?))
        }
    }
}

/// `/rooms/{room}?name={name}`, with the name URL-encoded.
fn room_path(room: &RoomName, name: &DisplayName) -> String {
    let query = serde_urlencoded::to_string([("name", name.as_str())]).unwrap_or_default();
    format!("/rooms/{room}?{query}")
}

#[derive(Debug, Deserialize)]
struct RoomQuery {
    name: Option<String>,
}

async fn room(
    path: web::Path<String>,
    query: web::Query<RoomQuery>,
    config: web::Data<PageConfig>,
) -> Result<HttpResponse, AppError> {
    let room = RoomName::new(path.into_inner()).map_err(AppError::InvalidRoom)?;
    let Some(name) = query.name.as_deref().filter(|n| !n.is_empty()) else {
        // No name yet: ask for one, with the room filled in.
        let query = serde_urlencoded::to_string([("room", room.as_str())]).unwrap_or_default();
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/?{query}")))
            .finish());
    };
    let name = DisplayName::new(name).map_err(AppError::InvalidName)?;
    html(&RoomPage {
        room: room.as_str(),
        name: name.as_str(),
        ws_url: &config.ws_url,
    })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&AppError::NotFound)
}
