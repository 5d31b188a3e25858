//! The app-server's one error type; every handler error becomes an HTML
//! error page with the right status.

use actix_web::http::{StatusCode, header::ContentType};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use protocol::ValidationError;

use crate::pages::ErrorPage;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The room in the path is not a valid room name.
    #[error("{0}")]
    InvalidRoom(ValidationError),
    /// The `name` parameter is not a valid display name.
    #[error("{0}")]
    InvalidName(ValidationError),
    /// No page at this path.
    #[error("there is no page at this address")]
    NotFound,
    /// A form was submitted from another site's page.
    #[error("this form can only be submitted from this site's own pages")]
    CrossSite,
    /// The request needs a signed-in operator.
    #[error("this page is for operators: sign in with the API key first")]
    NotOperator,
    /// A cookie could not be written into the response (cannot happen:
    /// its value is digits and base64url).
    #[error("the response could not be built")]
    Cookie,
    /// A template failed to render.
    #[error("the page could not be rendered")]
    Render(#[from] askama::Error),
}

impl AppError {
    fn title(&self) -> &'static str {
        match self {
            Self::InvalidRoom(_) => "Invalid room name",
            Self::InvalidName(_) => "Invalid display name",
            Self::NotFound => "Not found",
            Self::CrossSite => "Forbidden",
            Self::NotOperator => "Operators only",
            Self::Cookie | Self::Render(_) => "Server error",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRoom(_) | Self::InvalidName(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::CrossSite => StatusCode::FORBIDDEN,
            Self::NotOperator => StatusCode::UNAUTHORIZED,
            Self::Cookie | Self::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let Self::Render(e) = self {
            log::error!("rendering failed: {e}");
        }
        let detail = self.to_string();
        let page = ErrorPage {
            status: status.as_u16(),
            title: self.title(),
            detail: &detail,
            sign_in: matches!(self, Self::NotOperator),
        };
        match page.render() {
            Ok(body) => HttpResponse::build(status)
                .content_type(ContentType::html())
                .body(body),
            // The error page has no inputs that can fail to render; this is
            // the last resort if it ever does.
            Err(_) => HttpResponse::build(status)
                .content_type(ContentType::plaintext())
                .body(detail),
        }
    }
}
