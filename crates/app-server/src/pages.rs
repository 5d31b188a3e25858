//! The pages, one askama template struct each. Templates live in the
//! workspace's `templates/` folder; askama escapes every value for HTML.

use askama::Template;
use protocol::RoomInfo;

/// `GET /`: pick a display name and a room; the active rooms.
#[derive(Debug, Default, Template)]
#[template(path = "index.html")]
pub struct IndexPage<'a> {
    /// The room field's value.
    pub room: &'a str,
    /// The name field's value.
    pub name: &'a str,
    /// Why the last join was refused, if it was.
    pub error: Option<&'a str>,
    /// The first page of active rooms; `None` when the ws-server could not
    /// be asked.
    pub rooms: Option<Vec<RoomInfo>>,
    /// Whether there are more active rooms than `rooms` shows.
    pub more_rooms: bool,
}

/// `GET /announce`: the operator's announcement form.
#[derive(Debug, Default, Template)]
#[template(path = "announce.html")]
pub struct AnnouncePage<'a> {
    /// The room field's value.
    pub room: &'a str,
    /// The text field's value.
    pub text: &'a str,
    /// Why the last announcement failed, if it did.
    pub error: Option<&'a str>,
    /// A confirmation to show after an announcement.
    pub notice: Option<&'a str>,
}

/// `GET /operator`: the operator's sign-in (or sign-out) form.
#[derive(Debug, Default, Template)]
#[template(path = "operator.html")]
pub struct OperatorPage<'a> {
    /// Whether the request carries a valid operator session.
    pub signed_in: bool,
    /// Whether the server has an API key at all; without one nobody can
    /// sign in.
    pub enabled: bool,
    /// Why the last sign-in failed, if it did.
    pub error: Option<&'a str>,
}

/// `GET /rooms/{room}?name={name}`: the chat itself. The page's JavaScript
/// reads the room, the name, the WebSocket URL, its connection token and
/// where to get a fresh one from the body's data attributes.
#[derive(Debug, Template)]
#[template(path = "room.html")]
pub struct RoomPage<'a> {
    /// The room, already validated.
    pub room: &'a str,
    /// The display name, already validated.
    pub name: &'a str,
    /// Where the page's JavaScript connects.
    pub ws_url: &'a str,
    /// A member token for the browser's user and `name`.
    pub token: &'a str,
    /// Where the page gets a fresh token (`GET`, same origin, the cookie
    /// sent): `/token?name=NAME`.
    pub token_url: &'a str,
}

/// `GET /dashboard`: the operator's live dashboard; its script fills it
/// from `/dashboard/events`.
#[derive(Debug, Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {}

/// Any error: the status and what went wrong.
#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    /// The HTTP status code.
    pub status: u16,
    /// A short title, e.g. "Invalid room name".
    pub title: &'a str,
    /// The explanation shown to the user.
    pub detail: &'a str,
    /// Whether to offer the operator sign-in.
    pub sign_in: bool,
}
