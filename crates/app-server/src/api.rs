//! The JSON API: server-side publishing into rooms, and the room directory.
//! Every request needs `Authorization: Bearer API_KEY` (see
//! [`crate::api_key`]): without it, 401 `unauthorized`, or `api_disabled`
//! when the server has no key.
//!
//! Errors are JSON too: `{"error": {"code": "...", "message": "..."}}`, with
//! the codes of the WebSocket protocol where they apply (`invalid_room`,
//! `invalid_name`, `invalid_text`, `text_too_long`) and these of the API's
//! own: `invalid_json`, `unsupported_media_type`, `payload_too_large`,
//! `ws_unavailable` (503), `ws_timeout` (504), `ws_refused` (502),
//! `ws_interrupted` (502: the connection dropped after the request was sent,
//! so it may or may not have been carried out).

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use protocol::{DisplayName, ErrorCode, MessageText, RoomName, ValidationError};
use serde::Deserialize;
use serde_json::json;

use crate::publisher::{PublishError, Publisher};

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The author shown on announcements that name none.
pub const DEFAULT_ANNOUNCER: &str = "Announcer";

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field broke the protocol's rules.
    #[error("{message}")]
    Invalid {
        /// The protocol error code.
        code: ErrorCode,
        /// Why.
        message: String,
    },
    /// The body could not be read as the expected JSON.
    #[error("{message}")]
    Body {
        /// The HTTP status (400, 413 or 415).
        status: StatusCode,
        /// The error code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The ws-server could not carry out the request.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl ApiError {
    fn code(&self) -> &str {
        match self {
            Self::Invalid { code, .. } => code.as_str(),
            Self::Body { code, .. } => code,
            Self::Publish(PublishError::Unavailable) => "ws_unavailable",
            Self::Publish(PublishError::Timeout) => "ws_timeout",
            Self::Publish(PublishError::Refused { .. }) => "ws_refused",
            Self::Publish(PublishError::Interrupted) => "ws_interrupted",
        }
    }

    /// A validation failure of one field, with the protocol's code for it.
    pub fn invalid(code: ErrorCode, error: &ValidationError) -> Self {
        let code = match (code, error) {
            (ErrorCode::InvalidText, ValidationError::TooLong { .. }) => ErrorCode::TextTooLong,
            _ => code,
        };
        Self::Invalid {
            code,
            message: error.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Body { status, .. } => *status,
            Self::Publish(PublishError::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Publish(PublishError::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Self::Publish(PublishError::Refused { .. } | PublishError::Interrupted) => {
                StatusCode::BAD_GATEWAY
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(json!({"error": {"code": self.code(), "message": self.to_string()}}))
    }
}

/// Turns actix's JSON extraction errors into the API's error format.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let (status, code) = match &error {
        JsonPayloadError::ContentType => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        }
        _ => (StatusCode::BAD_REQUEST, "invalid_json"),
    };
    ApiError::Body {
        status,
        code,
        message: error.to_string(),
    }
    .into()
}

/// The body of `POST /api/rooms/{room}/messages`.
#[derive(Debug, Deserialize)]
pub struct PublishRequest {
    /// The message text.
    pub text: String,
    /// The author shown; [`DEFAULT_ANNOUNCER`] when absent.
    #[serde(default)]
    pub name: Option<String>,
}

/// Validates an announcement's room, author and text.
///
/// # Errors
/// [`ApiError::Invalid`] naming the first field that breaks its rule.
pub fn validate(
    room: &str,
    name: Option<&str>,
    text: String,
) -> Result<(RoomName, DisplayName, MessageText), ApiError> {
    let room = RoomName::new(room).map_err(|e| ApiError::invalid(ErrorCode::InvalidRoom, &e))?;
    let name = DisplayName::new(name.unwrap_or(DEFAULT_ANNOUNCER))
        .map_err(|e| ApiError::invalid(ErrorCode::InvalidName, &e))?;
    let text = MessageText::new(text).map_err(|e| ApiError::invalid(ErrorCode::InvalidText, &e))?;
    Ok((room, name, text))
}

/// `POST /api/rooms/{room}/messages`: publishes into the room through the
/// service connection; 201 with the stored message's id and offset.
pub async fn publish(
    path: web::Path<String>,
    body: web::Json<PublishRequest>,
    publisher: web::Data<Publisher>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (room, name, text) = validate(&path, body.name.as_deref(), body.text)?;
    let published = publisher.publish(room.clone(), name, text).await?;
    Ok(HttpResponse::Created().json(json!({
        "room": room,
        "id": published.id,
        "offset": published.offset,
    })))
}

/// The query of `GET /api/rooms`.
#[derive(Debug, Deserialize)]
pub struct RoomsQuery {
    /// The `next` of the previous page.
    pub after: Option<String>,
}

/// `GET /api/rooms[?after=ROOM]`: one page of the rooms that have members,
/// `{"rooms": [...], "next": ROOM}` (`next` only when there are more).
pub async fn rooms(
    query: web::Query<RoomsQuery>,
    publisher: web::Data<Publisher>,
) -> Result<HttpResponse, ApiError> {
    let after = match query.into_inner().after {
        Some(after) => {
            Some(RoomName::new(after).map_err(|e| ApiError::invalid(ErrorCode::InvalidRoom, &e))?)
        }
        None => None,
    };
    let page = publisher.rooms(after).await?;
    let body = match page.next {
        Some(next) => json!({"rooms": page.rooms, "next": next}),
        None => json!({"rooms": page.rooms}),
    };
    Ok(HttpResponse::Ok().json(body))
}
