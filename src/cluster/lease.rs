//! Nickname leases in Redis: the scripts that claim, renew, release and take back a lease
//! atomically (so a server never frees or overwrites a name another one holds), and the
//! commands that run them.

use ::redis::Cmd;

/// Claims or renews a lease: takes it if free, refreshes it if ours; 1 if ours after.
pub(super) const CLAIM_LUA: &str = "local v = redis.call('GET', KEYS[1]) \
     if v == false or v == ARGV[1] then \
       redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
     return 0";
/// Deletes a lease only if ours, so a server never frees a name another one holds.
const RELEASE_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
       return redis.call('DEL', KEYS[1]) end return 0";
/// Replaces a lease's value if it is still the given (forged) one; 1 if replaced.
const REPLACE_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
       redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";
/// The command that claims `key` for `id` for `ttl_ms`.
pub(super) fn claim_cmd(key: &str, id: &str, ttl_ms: u64) -> Cmd {
    let mut c = ::redis::cmd("EVAL");
    c.arg(CLAIM_LUA).arg(1).arg(key).arg(id).arg(ttl_ms);
    c
}

/// The command that releases `key` if `id` holds it.
pub(super) fn release_cmd(key: &str, id: &str) -> Cmd {
    let mut c = ::redis::cmd("EVAL");
    c.arg(RELEASE_LUA).arg(1).arg(key).arg(id);
    c
}

/// The command that sets `key` to `ours` for `ttl_ms` if it still holds `forged`.
pub(super) fn replace_cmd(key: &str, forged: &[u8], ours: &str, ttl_ms: u64) -> Cmd {
    let mut c = ::redis::cmd("EVAL");
    c.arg(REPLACE_LUA)
        .arg(1)
        .arg(key)
        .arg(forged)
        .arg(ours)
        .arg(ttl_ms);
    c
}
