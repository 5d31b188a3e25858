//! Validated values carried by messages: room names, display names and
//! message text. Each constructor states its rules; a value that exists is
//! within them, so no later code re-checks.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Why a room name, display name or message text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The value is empty (or, for text, only whitespace).
    #[error("{what} must not be empty")]
    Empty {
        /// What was being validated, e.g. `"room name"`.
        what: &'static str,
    },
    /// The value has more characters than allowed.
    #[error("{what} must be at most {max} characters (got {len})")]
    TooLong {
        /// What was being validated.
        what: &'static str,
        /// The limit, in Unicode scalar values.
        max: usize,
        /// The length that was refused.
        len: usize,
    },
    /// The value holds a character outside its alphabet.
    #[error("{what} must not contain {found:?}; allowed: {allowed}")]
    InvalidChar {
        /// What was being validated.
        what: &'static str,
        /// The first offending character.
        found: char,
        /// A human description of the alphabet.
        allowed: &'static str,
    },
    /// The value starts or ends with whitespace.
    #[error("{what} must not start or end with a space")]
    Padded {
        /// What was being validated.
        what: &'static str,
    },
}

/// Checks the length of `value` in characters against `1..=max`.
fn check_length(what: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { what });
    }
    let len = value.chars().count();
    if len > max {
        return Err(ValidationError::TooLong { what, max, len });
    }
    Ok(())
}

/// Checks `value` as 1 to `max` URL-safe characters: ASCII letters,
/// digits, `-` and `_` (room names and user ids).
fn check_url_safe(what: &'static str, value: &str, max: usize) -> Result<(), ValidationError> {
    check_length(what, value, max)?;
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        Some(found) => Err(ValidationError::InvalidChar {
            what,
            found,
            allowed: "ASCII letters, digits, '-' and '_'",
        }),
        None => Ok(()),
    }
}

/// The name of a room: 1 to 64 ASCII letters, digits, `-` or `_`.
///
/// The alphabet is URL-safe on purpose: room names appear in page paths
/// (`/rooms/{room}`) and must round-trip through them unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    /// The longest room name, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Validates `value` as a room name.
    ///
    /// # Errors
    /// [`ValidationError`] when `value` is empty, longer than
    /// [`Self::MAX_CHARS`] or holds a character outside the alphabet.
    pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        check_url_safe("room name", &value, Self::MAX_CHARS)?;
        Ok(Self(value))
    }

    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name a user shows in a room: 1 to 32 characters of letters and digits
/// (any script), spaces inside, and `-`, `_`, `.`, `'`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest display name, in characters.
    pub const MAX_CHARS: usize = 32;
    const ALLOWED: &'static str = "letters, digits, spaces, '-', '_', '.' and '''";

    /// Validates `value` as a display name.
    ///
    /// # Errors
    /// [`ValidationError`] when `value` is empty, too long, starts or ends
    /// with whitespace, or holds a character outside the alphabet.
    pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        let what = "display name";
        check_length(what, &value, Self::MAX_CHARS)?;
        if let Some(found) = value
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '\'')))
        {
            return Err(ValidationError::InvalidChar {
                what,
                found,
                allowed: Self::ALLOWED,
            });
        }
        if let Some(found) = value.chars().find(|c| is_invisible(*c)) {
            return Err(ValidationError::InvalidChar {
                what,
                found,
                allowed: "visible characters only",
            });
        }
        if value.starts_with(' ') || value.ends_with(' ') {
            return Err(ValidationError::Padded { what });
        }
        Ok(Self(value))
    }

    /// What two names are compared by when a room refuses a name that
    /// another user holds: the name after NFKC normalization and case
    /// folding, reduced to its confusable skeleton (Unicode TR39, which
    /// decomposes it), without combining marks, so that "Alice", "ALICE",
    /// "Ａｌｉｃｅ", a Cyrillic "Аlice" and "Alice" with a mark stacked on a
    /// letter are one name. Dropping every mark also makes "José" and
    /// "Jose" one name: a key errs towards refusing a look-alike.
    #[must_use]
    pub fn key(&self) -> NameKey {
        // Marks go first too: case folding turns some into letters (the
        // Greek ypogegrammeni becomes an iota).
        let bare: String = self.0.nfkd().filter(|c| !is_combining_mark(*c)).collect();
        let folded: String = caseless::default_case_fold_str(&bare.nfkc().collect::<String>());
        let skeleton: String = unicode_security::skeleton(&folded)
            .filter(|c| !is_combining_mark(*c))
            .collect();
        NameKey(skeleton.nfkc().collect())
    }

    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What [`DisplayName::key`] returns: a name reduced to what people see,
/// for comparisons only; never shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey(String);

impl NameKey {
    /// The key as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` is a default-ignorable code point (Unicode's
/// `Default_Ignorable_Code_Point`): shown as nothing, so a name holding one
/// looks like a name without it. Hangul fillers are letters to
/// `char::is_alphanumeric` and invisible all the same.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Whether `c` is a bidirectional formatting control: it can make a message
/// display in another order than it reads (the "Trojan Source" trick).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// The text of a chat message: 1 to 2000 characters, not only whitespace,
/// with no control characters other than newline and tab.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageText(String);

impl MessageText {
    /// The longest message text, in characters.
    pub const MAX_CHARS: usize = 2000;

    /// Validates `value` as message text.
    ///
    /// # Errors
    /// [`ValidationError`] when `value` is blank, longer than
    /// [`Self::MAX_CHARS`], or holds a control character other than `\n`
    /// and `\t`.
    pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        let what = "message text";
        check_length(what, &value, Self::MAX_CHARS)?;
        if value.trim().is_empty() {
            return Err(ValidationError::Empty { what });
        }
        if let Some(found) = value
            .chars()
            .find(|c| (c.is_control() && !matches!(c, '\n' | '\t')) || is_bidi_control(*c))
        {
            return Err(ValidationError::InvalidChar {
                what,
                found,
                allowed: "any character but control characters and bidi controls \
                          (newline and tab are allowed)",
            });
        }
        Ok(Self(value))
    }

    /// The text as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks `value` as an opaque token: 1 to 64 visible ASCII characters.
fn check_token(what: &'static str, value: &str) -> Result<(), ValidationError> {
    check_length(what, value, TOKEN_MAX_CHARS)?;
    if let Some(found) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(ValidationError::InvalidChar {
            what,
            found,
            allowed: "visible ASCII characters",
        });
    }
    Ok(())
}

/// The longest [`ClientRef`] or [`Epoch`], in characters.
const TOKEN_MAX_CHARS: usize = 64;

/// Defines an opaque token newtype: 1 to 64 visible ASCII characters.
macro_rules! token_newtype {
    ($(#[$doc:meta])* $ty:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            #[doc = concat!("Validates `value` as a ", $what, ".")]
            ///
            /// # Errors
            /// [`ValidationError`] when `value` is empty, longer than 64
            /// characters or holds anything but visible ASCII.
            pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                check_token($what, &value)?;
                Ok(Self(value))
            }

            #[doc = concat!("The ", $what, " as a string slice.")]
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

token_newtype!(
    /// A client's own label for one request (`ref` on the wire): 1 to 64
    /// visible ASCII characters. The server echoes it in the answer (`ack`,
    /// `error`, `joined`, `left`, `rooms`) so the client can match the two.
    ClientRef,
    "ref"
);

/// A user's id: 1 to 64 ASCII letters, digits, `-` or `_`. The app-server
/// gives each browser one (in a signed cookie) and puts it in the tokens it
/// mints; presence, authorship and "mine" are keyed by it, never by the
/// display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// The longest user id, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Validates `value` as a user id.
    ///
    /// # Errors
    /// [`ValidationError`] when `value` is empty, too long or holds a
    /// character outside the alphabet.
    pub fn new(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        check_url_safe("user id", &value, Self::MAX_CHARS)?;
        Ok(Self(value))
    }

    /// A new random user id (a UUIDv4 in hex: 122 random bits).
    #[must_use]
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

token_newtype!(
    /// A room history's epoch: it changes whenever the history is lost (for
    /// the in-memory store, when the server restarts), so that offsets from
    /// different epochs are never compared. 1 to 64 visible ASCII characters.
    Epoch,
    "epoch"
);

impl Epoch {
    /// A new epoch, different from every other one.
    #[must_use]
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

macro_rules! string_newtype_impls {
    ($($ty:ident),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = ValidationError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                value.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ValidationError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::new(value)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

string_newtype_impls!(RoomName, DisplayName, MessageText, ClientRef, Epoch, UserId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn room_names_accept_url_safe_ascii() {
        for ok in ["lobby", "a", "Room-1_b", &"r".repeat(64)] {
            assert_eq!(RoomName::new(ok).map(String::from), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn room_names_reject_empty_long_and_foreign_characters() {
        assert_eq!(
            RoomName::new(""),
            Err(ValidationError::Empty { what: "room name" })
        );
        assert!(matches!(
            RoomName::new("r".repeat(65)),
            Err(ValidationError::TooLong {
                max: 64,
                len: 65,
                ..
            })
        ));
        for (bad, found) in [
            ("a b", ' '),
            ("a/b", '/'),
            ("..", '.'),
            ("é", 'é'),
            ("a\0", '\0'),
        ] {
            assert!(
                matches!(RoomName::new(bad), Err(ValidationError::InvalidChar { found: f, .. }) if f == found),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn display_names_accept_any_script_and_inner_spaces() {
        for ok in ["Ada", "Ada Lovelace", "Zoë", "李雷", "o'brien", "x.y-z_1"] {
            assert!(DisplayName::new(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn display_names_reject_padding_markup_and_length() {
        assert_eq!(
            DisplayName::new(" Ada"),
            Err(ValidationError::Padded {
                what: "display name"
            })
        );
        assert!(matches!(
            DisplayName::new("<b>"),
            Err(ValidationError::InvalidChar { found: '<', .. })
        ));
        assert!(matches!(
            DisplayName::new("n".repeat(33)),
            Err(ValidationError::TooLong { max: 32, .. })
        ));
        assert!(DisplayName::new("").is_err());
    }

    #[test]
    fn invisible_characters_are_refused_in_names() {
        for bad in [
            "Ada\u{3164}",
            "A\u{200B}da",
            "Ada\u{FE0F}",
            "\u{115F}Ada",
            "Ad\u{00AD}a",
        ] {
            assert!(
                matches!(
                    DisplayName::new(bad),
                    Err(ValidationError::InvalidChar { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn look_alike_names_share_a_key() {
        let key = |s: &str| {
            DisplayName::new(s)
                .map(|n| n.key())
                .map_err(|e| e.to_string())
        };
        for same in [
            "ALICE",
            "alice",
            "\u{0410}lice",
            "\u{FF21}lice",
            "Al\u{0456}ce",
            "Alice\u{0345}",
            "Ali\u{0363}ce",
            "Al\u{00ED}ce",
        ] {
            assert_eq!(key(same), key("Alice"), "{same:?}");
        }
        assert_ne!(key("Alice"), key("Alicia"));
        assert_ne!(key("Bob"), key("Rob"));
    }

    #[test]
    fn bidi_controls_are_refused_in_text() {
        for bad in ["abc\u{202E}def", "\u{2066}x", "x\u{200F}"] {
            assert!(
                matches!(
                    MessageText::new(bad),
                    Err(ValidationError::InvalidChar { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(MessageText::new("שלום and hello").is_ok());
    }

    #[test]
    fn user_ids_are_url_safe_and_generated_unique() {
        assert!(UserId::new("u-1_A").is_ok());
        assert!(UserId::new("a b").is_err());
        assert!(UserId::new("").is_err());
        assert!(UserId::new("u".repeat(65)).is_err());
        assert_ne!(UserId::generate(), UserId::generate());
        assert!(UserId::new(UserId::generate().as_str()).is_ok());
    }

    #[test]
    fn message_text_counts_characters_not_bytes() {
        // 2000 three-byte characters are 6000 bytes but within the limit.
        assert!(MessageText::new("€".repeat(2000)).is_ok());
        assert!(matches!(
            MessageText::new("€".repeat(2001)),
            Err(ValidationError::TooLong { len: 2001, .. })
        ));
    }

    #[test]
    fn message_text_rejects_blank_and_control_characters() {
        assert!(matches!(
            MessageText::new("  \n\t"),
            Err(ValidationError::Empty { .. })
        ));
        assert!(matches!(
            MessageText::new("bell\u{7}"),
            Err(ValidationError::InvalidChar { found: '\u{7}', .. })
        ));
        assert!(MessageText::new("two\nlines\tand a tab").is_ok());
        assert!(MessageText::new("<script>alert(1)</script>").is_ok());
    }

    #[test]
    fn refs_and_epochs_are_short_visible_ascii() {
        assert!(ClientRef::new("c-1").is_ok());
        assert!(ClientRef::new("a".repeat(64)).is_ok());
        assert!(ClientRef::new("a".repeat(65)).is_err());
        assert!(ClientRef::new("a b").is_err());
        assert!(ClientRef::new("").is_err());
        assert!(Epoch::new("é").is_err());
        assert_ne!(Epoch::generate(), Epoch::generate());
        assert!(Epoch::new(Epoch::generate().as_str()).is_ok());
    }

    #[test]
    fn validation_errors_say_why() {
        let err = RoomName::new("a b").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("room name must not contain ' '; allowed: ASCII letters, digits, '-' and '_'")
        );
    }

    proptest! {
        #[test]
        fn valid_room_names_round_trip_through_json(name in "[A-Za-z0-9_-]{1,64}") {
            let room = RoomName::new(name.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let json = serde_json::to_string(&room).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&json, &format!("\"{name}\""));
            let back: RoomName = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, room);
        }

        #[test]
        fn constructors_never_panic(s in any::<String>()) {
            let _ = RoomName::new(s.clone());
            let _ = DisplayName::new(s.clone());
            let _ = MessageText::new(s);
        }

        #[test]
        fn accepted_text_is_within_limits(s in any::<String>()) {
            if let Ok(text) = MessageText::new(s) {
                let n = text.as_str().chars().count();
                prop_assert!((1..=MessageText::MAX_CHARS).contains(&n));
                prop_assert!(!text.as_str().trim().is_empty());
            }
        }
    }
}
