//! What the Redis engine keeps in Redis, and every command it sends.
//!
//! Per room `R`, every key carries `{R}` as its hash tag, so that a Redis
//! Cluster keeps one room's keys on one shard and each script below touches
//! a single slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `duplex:{R}:meta` | hash | `epoch`; `offset`, the last offset assigned; `presence`, a counter of presence changes |
//! | `duplex:{R}:log` | stream | the last `history_size` entries, id `<offset>-0`, field `m` |
//! | `duplex:{R}:users` | hash | user id → `<name key>\n<display name>` of each user present |
//! | `duplex:{R}:holders` | sorted set | `<instance>\n<user id>` scored by expiry (ms) |
//! | `duplex:{R}:counts` | hash | user id → how many instances hold the user |
//! | `duplex:{R}:names` | hash | name key → the user id showing that name |
//! | channel `duplex:{R}:events` | pub/sub | messages and presence changes, in order |
//!
//! and, across rooms, `duplex:rooms`, a sorted set of room names scored by
//! when an instance last said it has members there (the directory).
//!
//! A message's offset, its append to the log and its publication are one
//! script, so offsets and the log never disagree and every instance sees a
//! room's events in offset order. A room whose keys are gone (idle past
//! its time, or a Redis that restarted empty) is opened again under a new
//! epoch.

use std::time::Duration;

use protocol::{DisplayName, Epoch, Member, RoomInfo, RoomName, UserId};
use redis::aio::ConnectionManager;
use redis::{RedisResult, Script};

/// The start of every script that may open a room: `epoch` is the room's
/// epoch, a new one (`ARGV[1]`) if the room is gone, whose stale log is then
/// emptied. Every room script takes `KEYS` = meta, log, users, holders,
/// counts, names.
macro_rules! open_epoch {
    () => {
        r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
"
    };
}

/// The presence helpers of HOLD and RELEASE, for a script that has `epoch`
/// and takes the channel as `ARGV[$channel]`: `announce` publishes a
/// presence change with the next presence version (not when the room is
/// gone, `epoch` false); `let_go` takes one instance's hold of a user away
/// and, when it was the last, removes the user and their name and
/// announces it.
macro_rules! presence_lua {
    ($channel:literal) => {
        concat!(
            "local channel = ARGV[",
            $channel,
            "]\n",
            r"local function announce(change)
  if epoch then
    local version = redis.call('HINCRBY', KEYS[1], 'presence', 1)
    redis.call('PUBLISH', channel, 'p\n' .. epoch .. '\n' .. version .. '\n' .. change)
  end
end
local function let_go(user)
  if redis.call('HINCRBY', KEYS[5], user, -1) > 0 then return end
  redis.call('HDEL', KEYS[5], user)
  local shown = redis.call('HGET', KEYS[3], user)
  redis.call('HDEL', KEYS[3], user)
  if shown then
    local cut = string.find(shown, '\n', 1, true)
    local key = string.sub(shown, 1, cut - 1)
    if redis.call('HGET', KEYS[6], key) == user then
      redis.call('HDEL', KEYS[6], key)
    end
    announce('-' .. user .. '\n' .. string.sub(shown, cut + 1))
  end
end
"
        )
    };
}

/// Assigns the next offset, appends the entry, publishes it; returns the
/// epoch and the offset. The entry arrives cut around its offset, which
/// only this script knows. ARGV: new epoch, prefix, suffix, history size,
/// channel, key lifetime (ms).
const PUBLISH: &str = concat!(
    open_epoch!(),
    r"
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local entry = ARGV[2] .. offset .. ARGV[3]
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], offset .. '-0', 'm', entry)
end
redis.call('PUBLISH', ARGV[5], 'm\n' .. epoch .. '\n' .. offset .. '\n' .. entry)
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
return {epoch, offset}
"
);

/// Opens a room: its epoch and last offset. ARGV: new epoch, key lifetime.
const OPEN: &str = concat!(
    open_epoch!(),
    r"
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'offset'))}
"
);

/// Holds this instance's users in a room (new ones are announced), renews
/// their expiry, drops and announces the holders whose instance stopped
/// renewing, and returns the room's presence version, the users it refused
/// and the users present. A user new here is refused when another user
/// holds the same name key, or when the user shows another name (held by
/// another instance): the check and the claim are one step, so two
/// instances cannot both hand out one name. Every announcement carries the
/// room's epoch and the next presence version, so that an instance can
/// tell which events a member list already includes. Time is Redis's, so
/// that instances with skewed clocks agree. ARGV: new epoch, instance,
/// presence TTL, channel, key lifetime, then (user, name key, name) triples.
const HOLD: &str = concat!(
    open_epoch!(),
    presence_lua!(4),
    r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[3])
local refused = {}
for i = 6, #ARGV, 3 do
  local user, key, name = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local holder = ARGV[2] .. '\n' .. user
  if redis.call('ZSCORE', KEYS[4], holder) then
    redis.call('ZADD', KEYS[4], expires, holder)
  else
    local owner = redis.call('HGET', KEYS[6], key)
    local shown = redis.call('HGET', KEYS[3], user)
    if (owner and owner ~= user) or (shown and shown ~= key .. '\n' .. name) then
      table.insert(refused, user)
    else
      redis.call('ZADD', KEYS[4], expires, holder)
      redis.call('HSET', KEYS[6], key, user)
      redis.call('HSET', KEYS[3], user, key .. '\n' .. name)
      if redis.call('HINCRBY', KEYS[5], user, 1) == 1 then
        announce('+' .. user .. '\n' .. name)
      end
    end
  end
end
for _, holder in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('ZREM', KEYS[4], holder)
  let_go(string.sub(holder, string.find(holder, '\n', 1, true) + 1))
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return {tonumber(redis.call('HGET', KEYS[1], 'presence') or '0'), refused,
        redis.call('HGETALL', KEYS[3])}
"
);

/// Gives a room a new epoch if it still has epoch `ARGV[1]`: its data went
/// back in time, and offsets members already have would be handed out
/// again. Its log stays: offsets go on from where they are, under the new
/// epoch. Returns the epoch and offset after. ARGV: old epoch, new epoch.
const RENEW_EPOCH: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch == ARGV[1] then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')}
";

/// Lets go of one user of this instance in a room (announced if no other
/// instance holds it); a room left with no user starts its idle time.
/// ARGV: instance, channel, idle lifetime, user.
const RELEASE: &str = concat!(
    "local epoch = redis.call('HGET', KEYS[1], 'epoch')\n",
    presence_lua!(2),
    r"
if redis.call('ZREM', KEYS[4], ARGV[1] .. '\n' .. ARGV[4]) == 1 then
  let_go(ARGV[4])
end
if redis.call('HLEN', KEYS[3]) == 0 then
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
end
return 1
"
);

/// The current time in Redis, in ms, as the directory scripts use it.
macro_rules! redis_now {
    () => {
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"
    };
}

/// Lists a room in the directory until `presence_ttl` from now, and drops
/// the entries nobody renewed; the key itself lapses with its last entry.
/// KEYS: the directory. ARGV: room, presence TTL.
const LIST_ROOM: &str = concat!(
    redis_now!(),
    r"
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"
);

/// The rooms listed and not lapsed. KEYS: the directory.
const LISTED: &str = concat!(
    redis_now!(),
    r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"
);

/// The directory of rooms with members, across instances. Not a room key:
/// in a Cluster it lives on one shard, off the message path.
const DIRECTORY: &str = "duplex:rooms";

/// The keys and channel of one room.
#[derive(Debug, Clone)]
pub(super) struct RoomKeys {
    meta: String,
    log: String,
    users: String,
    holders: String,
    counts: String,
    names: String,
    /// The room's pub/sub channel.
    pub channel: String,
}

impl RoomKeys {
    pub fn new(room: &RoomName) -> Self {
        let key = |what: &str| format!("duplex:{{{room}}}:{what}");
        Self {
            meta: key("meta"),
            log: key("log"),
            users: key("users"),
            holders: key("holders"),
            counts: key("counts"),
            names: key("names"),
            channel: key("events"),
        }
    }

    /// Passes the room's keys to a script in the order every room script
    /// takes them: meta, log, users, holders, counts, names.
    fn bind<'a, 'b>(
        &self,
        invocation: &'b mut redis::ScriptInvocation<'a>,
    ) -> &'b mut redis::ScriptInvocation<'a> {
        invocation
            .key(&self.meta)
            .key(&self.log)
            .key(&self.users)
            .key(&self.holders)
            .key(&self.counts)
            .key(&self.names)
    }

    /// The room a channel belongs to.
    pub fn room_of(channel: &str) -> Option<RoomName> {
        let inner = channel.strip_prefix("duplex:{")?.strip_suffix("}:events")?;
        RoomName::new(inner).ok()
    }
}

/// One room's event as published: a message or a presence change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
    /// A stored message: its epoch, offset and encoded entry.
    Message {
        epoch: Epoch,
        offset: u64,
        entry: String,
    },
    /// A user appeared (`present`) or disappeared across all instances;
    /// `version` orders presence changes within the epoch.
    Presence {
        epoch: Epoch,
        version: u64,
        member: Member,
        present: bool,
    },
}

impl Event {
    /// The epoch of the room the event belongs to.
    pub fn epoch(&self) -> &Epoch {
        match self {
            Self::Message { epoch, .. } | Self::Presence { epoch, .. } => epoch,
        }
    }

    /// Parses a payload written by the scripts above.
    pub fn parse(payload: &str) -> Option<Self> {
        let (kind, rest) = payload.split_once('\n')?;
        match kind {
            "m" => {
                let (epoch, rest) = rest.split_once('\n')?;
                let (offset, entry) = rest.split_once('\n')?;
                Some(Self::Message {
                    epoch: Epoch::new(epoch).ok()?,
                    offset: offset.parse().ok()?,
                    entry: entry.to_owned(),
                })
            }
            "p" => {
                let (epoch, rest) = rest.split_once('\n')?;
                let (version, change) = rest.split_once('\n')?;
                let present = change.starts_with('+');
                let (user, name) = change.get(1..)?.split_once('\n')?;
                Some(Self::Presence {
                    epoch: Epoch::new(epoch).ok()?,
                    version: version.parse().ok()?,
                    member: Member {
                        user: UserId::new(user).ok()?,
                        name: DisplayName::new(name).ok()?,
                    },
                    present,
                })
            }
            _ => None,
        }
    }
}

/// Who is present in a room, as of a presence version, and which of the
/// users asked for were refused their name.
#[derive(Debug, Clone)]
pub(super) struct Presence {
    pub version: u64,
    pub members: Vec<Member>,
    pub refused: Vec<UserId>,
}

/// How long room keys live: renewed by every publish and every presence
/// refresh; a room with no holder left keeps them `room_idle_ttl`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lifetimes {
    pub room_idle_ttl: Duration,
    pub presence_ttl: Duration,
}

impl Lifetimes {
    /// The expiry set on a room's keys while it may have members: long
    /// enough to survive between two presence refreshes.
    fn keep_ms(self) -> u128 {
        (self.room_idle_ttl + self.presence_ttl).as_millis()
    }
}

/// The scripts, loaded once and invoked by hash (EVALSHA, falling back to
/// EVAL after a Redis restart).
#[derive(Debug)]
pub(super) struct Store {
    conn: ConnectionManager,
    instance: String,
    history_size: usize,
    /// The most entries a join that does not recover is sent.
    join_history: usize,
    lifetimes: Lifetimes,
    publish: Script,
    open: Script,
    hold: Script,
    release: Script,
    list_room: Script,
    listed: Script,
    renew_epoch: Script,
}

impl Store {
    pub fn new(
        conn: ConnectionManager,
        instance: String,
        history_size: usize,
        join_history: usize,
        lifetimes: Lifetimes,
    ) -> Self {
        Self {
            conn,
            instance,
            history_size,
            join_history,
            lifetimes,
            publish: Script::new(PUBLISH),
            open: Script::new(OPEN),
            hold: Script::new(HOLD),
            release: Script::new(RELEASE),
            list_room: Script::new(LIST_ROOM),
            listed: Script::new(LISTED),
            renew_epoch: Script::new(RENEW_EPOCH),
        }
    }

    /// A round trip to Redis: PING.
    pub async fn ping(&self) -> RedisResult<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(drop)
    }

    /// Stores an entry cut around its offset; returns its epoch and offset.
    pub async fn publish(
        &self,
        keys: &RoomKeys,
        prefix: &str,
        suffix: &str,
    ) -> RedisResult<(Epoch, u64)> {
        let mut invocation = self.publish.prepare_invoke();
        let (epoch, offset): (String, u64) = keys
            .bind(&mut invocation)
            .arg(Epoch::generate().as_str())
            .arg(prefix)
            .arg(suffix)
            .arg(self.history_size)
            .arg(&keys.channel)
            .arg(self.lifetimes.keep_ms().to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((parse_epoch(epoch)?, offset))
    }

    /// The room's epoch and last offset, opening it under a new epoch if it
    /// is gone.
    pub async fn open(&self, keys: &RoomKeys) -> RedisResult<(Epoch, u64)> {
        let (epoch, offset): (String, u64) = self
            .open
            .key(&keys.meta)
            .key(&keys.log)
            .arg(Epoch::generate().as_str())
            .arg(self.lifetimes.keep_ms().to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((parse_epoch(epoch)?, offset))
    }

    /// A new epoch for a room that went back in time under `epoch`; returns
    /// the room's epoch and offset after (another instance may have renewed
    /// it first).
    pub async fn renew_epoch(&self, keys: &RoomKeys, epoch: &Epoch) -> RedisResult<(Epoch, u64)> {
        let (epoch, offset): (String, u64) = self
            .renew_epoch
            .key(&keys.meta)
            .arg(epoch.as_str())
            .arg(Epoch::generate().as_str())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok((parse_epoch(epoch)?, offset))
    }

    /// Holds `members` for this instance (new ones only if their name is
    /// free), renews them, sweeps holders that expired; returns the room's
    /// presence version, the users refused, and the users present, sorted
    /// by name.
    pub async fn hold<'a>(
        &self,
        keys: &RoomKeys,
        members: impl IntoIterator<Item = &'a Member>,
    ) -> RedisResult<Presence> {
        let mut invocation = self.hold.prepare_invoke();
        keys.bind(&mut invocation)
            .arg(Epoch::generate().as_str())
            .arg(&self.instance)
            .arg(self.lifetimes.presence_ttl.as_millis().to_string())
            .arg(&keys.channel)
            .arg(self.lifetimes.keep_ms().to_string());
        for member in members {
            invocation
                .arg(member.user.as_str())
                .arg(member.name.key().as_str())
                .arg(member.name.as_str());
        }
        let (version, refused, users): (u64, Vec<String>, Vec<(String, String)>) =
            invocation.invoke_async(&mut self.conn.clone()).await?;
        let mut members: Vec<Member> = users
            .into_iter()
            .filter_map(|(user, shown)| {
                let (_, name) = shown.split_once('\n')?;
                Some(Member {
                    user: UserId::new(user).ok()?,
                    name: DisplayName::new(name).ok()?,
                })
            })
            .collect();
        crate::engine::local::sort_members(&mut members);
        let refused = refused
            .into_iter()
            .filter_map(|u| UserId::new(u).ok())
            .collect();
        Ok(Presence {
            version,
            members,
            refused,
        })
    }

    /// Lets go of `user` for this instance.
    pub async fn release(&self, keys: &RoomKeys, user: &UserId) -> RedisResult<()> {
        let mut invocation = self.release.prepare_invoke();
        let _: i64 = keys
            .bind(&mut invocation)
            .arg(&self.instance)
            .arg(&keys.channel)
            .arg(self.lifetimes.room_idle_ttl.as_millis().to_string())
            .arg(user.as_str())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// The log's entries with offsets `from..=to`, oldest first, at most
    /// `history_size + 1` of them (a recovery reads the entry at its
    /// position too, to learn whether older ones are kept), as
    /// `(offset, entry)`.
    pub async fn range(
        &self,
        keys: &RoomKeys,
        from: u64,
        to: u64,
    ) -> RedisResult<Vec<(u64, String)>> {
        if self.history_size == 0 || from > to {
            return Ok(Vec::new());
        }
        let reply: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&keys.log)
            .arg(format!("{from}-0"))
            .arg(format!("{to}-0"))
            .arg("COUNT")
            .arg(self.history_size.saturating_add(1))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(entries(reply))
    }

    /// What a join that does not recover is sent: the last `join_history`
    /// entries up to offset `to`, oldest first, and whether older ones are
    /// kept.
    pub async fn latest(
        &self,
        keys: &RoomKeys,
        to: u64,
    ) -> RedisResult<(Vec<(u64, String)>, bool)> {
        if self.history_size == 0 || to == 0 {
            return Ok((Vec::new(), false));
        }
        let count = self.join_history.min(self.history_size);
        let reply: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(&keys.log)
            .arg(format!("{to}-0"))
            .arg("-")
            .arg("COUNT")
            .arg(count.saturating_add(1))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(oldest_first(entries(reply), count))
    }

    /// The room's epoch (`None` when Redis no longer holds the room) and
    /// the last `limit` entries with offsets below `before`, oldest first,
    /// read in one transaction; and whether older entries are kept.
    pub async fn history(
        &self,
        keys: &RoomKeys,
        before: u64,
        limit: usize,
    ) -> RedisResult<(Option<Epoch>, Vec<String>, bool)> {
        let mut conn = self.conn.clone();
        let (epoch, reply) = if before <= 1 || self.history_size == 0 {
            let epoch: Option<String> = redis::cmd("HGET")
                .arg(&keys.meta)
                .arg("epoch")
                .query_async(&mut conn)
                .await?;
            (epoch, Vec::new())
        } else {
            let (epoch, reply): (Option<String>, Vec<(String, Vec<String>)>) = redis::pipe()
                .atomic()
                .cmd("HGET")
                .arg(&keys.meta)
                .arg("epoch")
                .cmd("XREVRANGE")
                .arg(&keys.log)
                .arg(format!("{}-0", before - 1))
                .arg("-")
                .arg("COUNT")
                .arg(limit.saturating_add(1))
                .query_async(&mut conn)
                .await?;
            (epoch, reply)
        };
        let epoch = epoch.map(parse_epoch).transpose()?;
        let (entries, has_earlier) = oldest_first(entries(reply), limit);
        Ok((
            epoch,
            entries.into_iter().map(|(_, entry)| entry).collect(),
            has_earlier,
        ))
    }

    /// Says, in the directory, that `room` has members here, until
    /// `presence_ttl` from now.
    pub async fn list_room(&self, room: &RoomName) -> RedisResult<()> {
        let _: i64 = self
            .list_room
            .key(DIRECTORY)
            .arg(room.as_str())
            .arg(self.lifetimes.presence_ttl.as_millis().to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// One page of the rooms with a member on some instance, by name,
    /// with their member counts: at most `limit` after `after`, and where
    /// the next page starts.
    pub async fn directory(
        &self,
        after: Option<&RoomName>,
        limit: usize,
    ) -> RedisResult<crate::engine::Page> {
        let mut conn = self.conn.clone();
        let listed: Vec<String> = self.listed.key(DIRECTORY).invoke_async(&mut conn).await?;
        let mut rooms: Vec<RoomName> = listed
            .into_iter()
            .filter_map(|r| RoomName::new(r).ok())
            .filter(|r| after.is_none_or(|after| r > after))
            .collect();
        rooms.sort();
        let more = rooms.len() > limit;
        rooms.truncate(limit);
        // Member counts for this page only.
        let mut pipe = redis::pipe();
        for room in &rooms {
            pipe.cmd("HLEN").arg(RoomKeys::new(room).users);
        }
        let counts: Vec<usize> = pipe.query_async(&mut conn).await?;
        let next = more.then(|| rooms.last().cloned()).flatten();
        let rooms = rooms
            .into_iter()
            .zip(counts)
            .filter(|(_, members)| *members > 0)
            .map(|(room, members)| RoomInfo { room, members })
            .collect();
        Ok(crate::engine::Page { rooms, next })
    }
}

fn parse_epoch(epoch: String) -> RedisResult<Epoch> {
    Epoch::new(epoch).map_err(|e| {
        redis::RedisError::from((redis::ErrorKind::Parse, "bad epoch in Redis", e.to_string()))
    })
}

/// The first `count` of `newest_first` entries (an XREVRANGE reply that
/// asked for one more), oldest first, and whether there was one more: an
/// older entry is kept.
fn oldest_first(mut newest_first: Vec<(u64, String)>, count: usize) -> (Vec<(u64, String)>, bool) {
    let has_earlier = newest_first.len() > count;
    newest_first.truncate(count);
    newest_first.reverse();
    (newest_first, has_earlier)
}

/// `(offset, entry)` pairs from an XRANGE reply; ids are `<offset>-0`.
fn entries(reply: Vec<(String, Vec<String>)>) -> Vec<(u64, String)> {
    reply
        .into_iter()
        .filter_map(|(id, mut fields)| {
            let offset = id.split_once('-')?.0.parse().ok()?;
            // fields: ["m", entry]
            let entry = fields.pop()?;
            Some((offset, entry))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_room_carries_the_room_as_its_hash_tag() {
        let room = RoomName::new("lobby-1").unwrap_or_else(|e| panic!("{e}"));
        let keys = RoomKeys::new(&room);
        for key in [
            &keys.meta,
            &keys.log,
            &keys.users,
            &keys.holders,
            &keys.counts,
            &keys.names,
            &keys.channel,
        ] {
            assert!(key.contains("{lobby-1}"), "{key}");
        }
        assert_eq!(RoomKeys::room_of(&keys.channel), Some(room));
        assert_eq!(RoomKeys::room_of("duplex:{a b}:events"), None);
    }

    #[test]
    fn events_parse_as_the_scripts_write_them() {
        let epoch = Epoch::generate();
        let payload = format!(
            "m\n{}\n7\n{{\"id\":\"x\",\"text\":\"a\\nb\"}}",
            epoch.as_str()
        );
        assert_eq!(
            Event::parse(&payload),
            Some(Event::Message {
                epoch,
                offset: 7,
                entry: "{\"id\":\"x\",\"text\":\"a\\nb\"}".to_owned()
            })
        );
        let e = Epoch::generate();
        let e = e.as_str();
        match Event::parse(&format!("p\n{e}\n3\n+u1\nAda Lovelace")) {
            Some(Event::Presence {
                member,
                present,
                version,
                ..
            }) => assert_eq!(
                (member.user.as_str(), member.name.as_str(), present, version),
                ("u1", "Ada Lovelace", true, 3)
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Event::parse(&format!("p\n{e}\n4\n-u1\nAda")),
            Some(Event::Presence {
                present: false,
                version: 4,
                ..
            })
        ));
        assert_eq!(Event::parse("x\nwhat"), None);
        assert_eq!(Event::parse("m\nnot an epoch\n1\n{}"), None);
    }
}
