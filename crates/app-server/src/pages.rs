//! The pages, one askama template struct each. Templates live in the
//! workspace's `templates/` folder; askama escapes every value for HTML.

use askama::Template;
use protocol::RoomInfo;

/// `GET /`: pick a display name and a room; the active rooms; an
/// announcement form.
#[derive(Debug, Default, Template)]
#[template(path = "index.html")]
pub struct IndexPage<'a> {
    /// The room field's value.
    pub room: &'a str,
    /// The name field's value.
    pub name: &'a str,
    /// Why the last join was refused, if it was.
    pub error: Option<&'a str>,
    /// The active rooms; `None` when the ws-server could not be asked.
    pub rooms: Option<Vec<RoomInfo>>,
    /// The announcement form's room field.
    pub announce_room: &'a str,
    /// The announcement form's text field.
    pub announce_text: &'a str,
    /// Why the last announcement failed, if it did.
    pub announce_error: Option<&'a str>,
    /// A confirmation to show, e.g. after an announcement.
    pub notice: Option<&'a str>,
}

/// `GET /rooms/{room}?name={name}`: the chat itself. The page's JavaScript
/// reads the room, the name and the WebSocket URL from the body's data
/// attributes.
#[derive(Debug, Template)]
#[template(path = "room.html")]
pub struct RoomPage<'a> {
    /// The room, already validated.
    pub room: &'a str,
    /// The display name, already validated.
    pub name: &'a str,
    /// Where the page's JavaScript connects.
    pub ws_url: &'a str,
}

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
}
