#!/usr/bin/env python3
"""Patroni's Consul session sequence, made with python-consul, against one HTTP address.

Patroni (patroni/dcs/consul.py) drives python-consul's endpoint classes (consul.base.Consul)
through its own HTTP layer, which
  * adds "ttl": "<ttl/2>s" to every PUT /v1/session/create body (python-consul refuses a TTL
    under 10s, and Patroni halves its ttl because Consul invalidates at 2 x TTL), and
  * turns a 500 whose body starts with "Invalid Session TTL" or "invalid session" into its own
    exceptions (it re-creates the session on the second one).
This script does the same with Debian's python3-consul and asserts what Patroni relies on:
  create(behavior='delete', lock_delay=0.001, checks=[] or node checks), the leader key taken by
  kv.put(acquire=session), a second session failing to take it, renew, a session left to expire
  deleting its keys, renew of the expired session raising NotFound and a new session taking the
  lock at once (lock-delay 1ms), blocking kv.get(index=, wait=) returning on a change and after
  its wait otherwise, kv.put(cas=), destroy, and agent.self().

Usage: patroni_session.py HOST:PORT [--ttl SECONDS]
  --ttl is the TTL sent to Consul (Patroni sends ttl/2); default: DebugConfig.SessionTTLMin.
Exit status 0 when every expectation holds; 1 with a "FAIL:" line otherwise.
"""
import argparse
import json
import re
import sys
import threading
import time
import uuid

try:
    import consul
    import consul.base
    import consul.std
except ImportError as e:  # the Go test checks for this before running us
    print("FAIL: python-consul is not importable (%s); install python3-consul" % e)
    sys.exit(2)


class Failure(Exception):
    pass


def expect(cond, what, *details):
    if not cond:
        raise Failure(what + ("" if not details else ": " + " ".join(repr(d) for d in details)))
    print("ok   " + what, flush=True)


def note(msg):
    print("note " + msg, flush=True)


# --- Patroni's HTTP layer, rebuilt on python-consul's requests client ------------------------


class InvalidSessionTTL(consul.ConsulException):
    pass


class InvalidSession(consul.ConsulException):
    pass


class ConsulInternalError(consul.ConsulException):
    pass


class PatroniHTTP(consul.std.HTTPClient):
    ttl = 15.0  # Patroni: its ttl / 2

    def response(self, response):
        r = super().response(response)
        if r.code == 500:  # Patroni classifies 500s by how the body starts
            self.last_500 = r.body
            if r.body.startswith("Invalid Session TTL"):
                raise InvalidSessionTTL("500 " + r.body)
            if r.body.startswith("invalid session"):
                raise InvalidSession("500 " + r.body)
            raise ConsulInternalError("500 " + r.body)
        return r

    def put(self, callback, path, params=None, data=""):
        if path == "/v1/session/create":
            ttl = '"ttl": "%ss"' % self.ttl
            data = "{" + ttl + "}" if not data or data == "{}" else data[:-1] + ", " + ttl + "}"
        return self.retry(super().put, callback, path, params=params, data=data)

    def get(self, callback, path, params=None):
        return self.retry(super().get, callback, path, params=params)

    def delete(self, callback, path, params=None):
        return self.retry(super().delete, callback, path, params=params)

    # Patroni retries ConsulInternalError until its retry_timeout; here only the 500s that say the
    # cluster had no leader for a moment (an election), for at most 15s, and each is printed.
    TRANSIENT = ("No cluster leader", "leadership lost while committing log")

    def retry(self, call, *args, **kwargs):
        deadline = time.monotonic() + 15
        while True:
            try:
                return call(*args, **kwargs)
            except ConsulInternalError as e:
                if not any(m in str(e) for m in self.TRANSIENT) or time.monotonic() > deadline:
                    raise
                note("retrying %s after %s (Patroni retries ConsulInternalError)" % (args[1], e))
                time.sleep(0.2)


class PatroniConsul(consul.base.Consul):
    def connect(self, host, port, scheme, verify=True, cert=None):
        return PatroniHTTP(host, port, scheme, verify, cert)


def go_duration(s):
    """Seconds in a Go duration string such as "10s", "500ms", "1m0s"."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    parts = re.findall(r"([0-9.]+)(h|ms|m|s|us|µs|ns)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise ValueError("not a Go duration: %r" % s)
    return sum(float(a) * units[b] for a, b in parts)


RPC_PREFIX = "rpc error making call: "


def check_500_prefix(body, is_leader, what):
    """Consul 1.20.1 answers an RPC error of a request a follower forwarded with this prefix, and
    the same error on the leader (served in memory) without it; Patroni's startswith() checks
    only see the error on the leader."""
    if is_leader:
        expect(not body.startswith(RPC_PREFIX), what + ": on the leader the body has no '" + RPC_PREFIX + "' prefix", body)
    else:
        expect(body.startswith(RPC_PREFIX), what + ": on a follower the body has the '" + RPC_PREFIX + "' prefix", body)


def blocking_get(c, key, index, wait):
    """kv.get(index=, wait=) in a thread, as Patroni's watch() makes it; returns a holder."""
    out = {}

    def run():
        t0 = time.monotonic()
        try:
            out["idx"], out["val"] = c.kv.get(key, index=index, wait=wait)
        except Exception as e:  # reported by the caller
            out["err"] = e
        out["took"] = time.monotonic() - t0

    th = threading.Thread(target=run, daemon=True)
    th.start()
    out["thread"] = th
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr", help="HOST:PORT of a Consul HTTP API")
    ap.add_argument("--ttl", type=float, default=0, help="session TTL in seconds sent to Consul")
    args = ap.parse_args()
    host, _, port = args.addr.rpartition(":")
    c = PatroniConsul(host=host, port=int(port))
    http = c.http

    # agent.self(): Patroni's adjust_ttl reads settings['Config']['SessionTTLMin'] (nanoseconds).
    me = c.agent.self()
    expect("Config" in me and me["Config"].get("NodeName"), "agent.self() has Config.NodeName", me.get("Config"))
    node = me["Config"]["NodeName"]
    is_leader = me.get("Stats", {}).get("consul", {}).get("leader")
    expect(is_leader in ("true", "false"), "agent.self() has Stats.consul.leader", is_leader)
    is_leader = is_leader == "true"
    if "SessionTTLMin" in me["Config"]:
        note("Config.SessionTTLMin = %r (what Patroni's adjust_ttl reads)" % me["Config"]["SessionTTLMin"])
    else:
        note("Config has no SessionTTLMin: Patroni's adjust_ttl (settings['Config']['SessionTTLMin']) "
             "raises KeyError there and keeps its TTL; DebugConfig.SessionTTLMin = %r"
             % me.get("DebugConfig", {}).get("SessionTTLMin"))
    dbg = me.get("DebugConfig", {}).get("SessionTTLMin")
    expect(isinstance(dbg, str), "agent.self() has DebugConfig.SessionTTLMin as a duration string", dbg)
    min_ttl = go_duration(dbg)
    if min_ttl == 0:  # real Consul reports "0s" when session_ttl_min is not set; its server uses 10s
        note("DebugConfig.SessionTTLMin is %r: unset, so Consul's default 10s applies" % dbg)
        min_ttl = 10.0
    ttl = args.ttl or min_ttl
    note("node %s (%s), session_ttl_min %ss, TTL used %ss (invalidation at 2 x TTL)"
         % (node, "leader" if is_leader else "follower", min_ttl, ttl))

    prefix = "service/pgtest-%s/" % uuid.uuid4().hex[:8]
    leader, init, cfg = prefix + "leader", prefix + "initialize", prefix + "config"
    m1, m2 = prefix + "members/pg1", prefix + "members/pg2"

    def create(name, checks):
        return c.session.create(name=name, checks=checks, lock_delay=0.001, behavior="delete")

    # A TTL under session_ttl_min: Patroni expects a 500 "Invalid Session TTL..." (then adjusts).
    http.ttl = min_ttl / 2
    try:
        create("pgtest-short", [])
        raise Failure("a session with TTL %ss under session_ttl_min %ss was created" % (http.ttl, min_ttl))
    except consul.ConsulException as e:
        body = getattr(http, "last_500", "")
        expect("Invalid Session TTL" in body, "create with TTL under session_ttl_min is a 500 'Invalid Session TTL'", str(e))
        check_500_prefix(body, is_leader, "the 'Invalid Session TTL' 500")
        if not isinstance(e, InvalidSessionTTL):
            note("the body does not START with 'Invalid Session TTL' (%r): Patroni would raise "
                 "ConsulInternalError and retry instead of calling adjust_ttl" % body)
    http.ttl = ttl

    s1 = create("pgtest-pg1", [])
    s2 = create("pgtest-pg2", [])
    expect(s1 and s2 and s1 != s2, "session.create(behavior='delete', lock_delay=0.001, checks=[]) twice", s1, s2)
    _, i1 = c.session.info(s1)
    expect(i1 is not None and i1["Behavior"] == "delete", "session.info: Behavior delete", i1)
    expect(go_duration(i1["TTL"]) == ttl, "session.info: TTL is the one sent", i1["TTL"], ttl)
    expect(i1["LockDelay"] == 1000000, "session.info: LockDelay 0.001s is 1ms", i1["LockDelay"])
    expect(not i1.get("NodeChecks") and not i1.get("Checks"), "session.info: checks=[] means no checks", i1)
    expect(i1["Node"] == node, "session.info: Node is the agent's node", i1["Node"], node)
    sc = create("pgtest-serf", ["serfHealth"])  # Patroni's consul.checks: [serfHealth]
    _, ic = c.session.info(sc)
    checks = (ic or {}).get("NodeChecks") or (ic or {}).get("Checks")
    expect(checks == ["serfHealth"], "session.create(checks=['serfHealth']) keeps the node check", ic)
    expect(c.session.destroy(sc) is True, "session.destroy of the serfHealth session")

    # initialize (cas=0 twice), the config key with cas.
    expect(c.kv.put(init, "7000000000000000001", cas=0) is True, "kv.put(initialize, cas=0) on a new key")
    expect(c.kv.put(init, "7000000000000000002", cas=0) is False, "kv.put(initialize, cas=0) again is refused")
    expect(c.kv.put(cfg, '{"ttl":30}', cas=0) is True, "kv.put(config, cas=0)")
    _, e = c.kv.get(cfg)
    mi = e["ModifyIndex"]
    expect(c.kv.put(cfg, '{"ttl":20}', cas=mi) is True, "kv.put(config, cas=ModifyIndex)")
    expect(c.kv.put(cfg, '{"ttl":10}', cas=mi) is False, "kv.put(config, cas=old ModifyIndex) is refused")
    _, e = c.kv.get(cfg)
    expect(e["Value"] == b'{"ttl":20}', "config holds the cas winner", e["Value"])

    # Leader lock and member keys.
    expect(c.kv.put(leader, "pg1", acquire=s1) is True, "kv.put(leader, acquire=s1) takes the lock")
    expect(c.kv.put(leader, "pg2", acquire=s2) is False, "kv.put(leader, acquire=s2) fails while s1 holds it")
    _, e = c.kv.get(leader)
    expect(e["Session"] == s1 and e["Value"] == b"pg1", "the leader key is s1's", e)
    expect(e["LockIndex"] == 1, "LockIndex 1 after the first acquisition", e["LockIndex"])
    expect(c.kv.put(m1, '{"role":"primary"}', acquire=s1) is True, "touch_member pg1 (acquire=s1)")
    expect(c.kv.put(m2, '{"role":"replica"}', acquire=s2) is True, "touch_member pg2 (acquire=s2)")
    r = c.session.renew(s1)
    expect(r is not None and r["ID"] == s1, "session.renew(s1) answers the session", r)

    # A blocking get on an unchanged key returns after its wait, with the same index (Patroni's
    # watch then answers False).
    idx, _ = c.kv.get(leader)
    w = blocking_get(c, leader, idx, "1s")
    w["thread"].join(10)
    expect("idx" in w and str(w["idx"]) == str(idx) and w["took"] >= 0.9,
           "blocking kv.get(leader, index, wait=1s) with no change returns after ~1s, same index", w)

    # A blocking get returns on a change (Patroni watches the leader key; here the config key).
    idx, _ = c.kv.get(cfg)
    w = blocking_get(c, cfg, idx, "30s")
    time.sleep(0.5)
    expect(c.kv.put(cfg, '{"ttl":30}') is True, "kv.put(config) while a blocking get waits")
    w["thread"].join(10)
    expect("idx" in w and int(w["idx"]) > int(idx) and w["val"]["Value"] == b'{"ttl":30}' and w["took"] < 5,
           "the blocking get returned on the change with a higher index and the new value", w)

    # s1 renewed every TTL/2 for 3 x TTL outlives its 2 x TTL; s2, never renewed, expires and its
    # member key is deleted (behavior delete).
    t_end = time.monotonic() + 3 * ttl
    while time.monotonic() < t_end:
        r = c.session.renew(s1)
        if r is None or r["ID"] != s1:
            raise Failure("session.renew(s1) failed while renewing every TTL/2: %r" % r)
        time.sleep(ttl / 2)
    _, e = c.kv.get(leader)
    expect(e is not None and e["Session"] == s1, "s1 renewed every TTL/2 still holds the leader key after 3 x TTL", e)
    _, e = c.kv.get(m2)
    expect(e is None, "s2 (not renewed) expired and its member key was deleted (behavior delete)", e)
    try:
        c.session.renew(s2)
        raise Failure("session.renew of the expired s2 did not raise NotFound")
    except consul.NotFound:
        expect(True, "session.renew(expired s2) raises NotFound")

    # Stop renewing s1 and watch the leader key: the blocking get returns when s1 expires and the
    # key is deleted, no earlier than TTL after the last renew.
    c.session.renew(s1)
    t_renew = time.monotonic()
    idx, _ = c.kv.get(leader)
    w = blocking_get(c, leader, idx, "%ds" % int(6 * ttl + 5))
    w["thread"].join(6 * ttl + 15)
    expired_after = time.monotonic() - t_renew
    expect("idx" in w and int(w["idx"]) > int(idx) and w["val"] is None,
           "blocking kv.get(leader) returns when s1 expires, the key deleted", w)
    # Consul invalidates at 2 x TTL after the last renew (the leader re-arms the timer before it
    # answers the renew, so 0.25s of slack below), and Patroni sizes its ttl on that.
    expect(2 * ttl - 0.25 <= expired_after <= 2 * ttl + 10,
           "s1 expired 2 x TTL (-0.25s, +10s) after its last renew, not earlier", expired_after, ttl)
    note("s1 expired %.2fs after its last renew (TTL %ss)" % (expired_after, ttl))

    # Patroni's _do_refresh_session: renew -> NotFound -> create a new session.
    try:
        c.session.renew(s1)
        raise Failure("session.renew of the expired s1 did not raise NotFound")
    except consul.NotFound:
        expect(True, "session.renew(expired s1) raises NotFound")
    # Patroni's acquire with a session that disappeared: a 500 "invalid session ..." (InvalidSession).
    try:
        r = c.kv.put(leader, "pg1", acquire=s1)
        raise Failure("kv.put(acquire=expired s1) answered %r instead of a 500" % r)
    except consul.ConsulException as e:
        body = getattr(http, "last_500", "")
        expect("invalid session" in body.lower(), "kv.put(acquire=expired s1) is a 500 naming the invalid session", str(e))
        check_500_prefix(body, is_leader, "the 'invalid session' 500")
        if not isinstance(e, InvalidSession):
            note("the body does not START with 'invalid session' (%r): Patroni would raise "
                 "ConsulInternalError and retry instead of re-creating its session" % body)
    s3 = create("pgtest-pg1", [])
    expect(s3 and s3 not in (s1, s2), "a new session after NotFound", s3)
    expect(c.kv.put(leader, "pg1", acquire=s3) is True, "the new session takes the leader key at once (lock-delay 1ms)")
    _, e = c.kv.get(leader)
    expect(e["Session"] == s3 and e["LockIndex"] == 1, "the leader key is s3's, LockIndex 1 (the key was re-created)", e)
    try:
        r = c.kv.put(leader, "pg2", acquire=s2)
        raise Failure("kv.put(acquire=expired s2) on the held key answered %r instead of a 500" % r)
    except consul.ConsulException:
        expect("invalid session" in getattr(http, "last_500", "").lower(),
               "the expired s2 cannot take the lock (500 invalid session)", getattr(http, "last_500", ""))

    # destroy: the lock holder's keys go (behavior delete); the session is gone.
    idx, _ = c.kv.get(leader)
    w = blocking_get(c, leader, idx, "30s")
    expect(c.session.destroy(s3) is True, "session.destroy(s3)")
    w["thread"].join(10)
    expect("idx" in w and w["val"] is None and w["took"] < 5, "destroy deleted the leader key; the blocking get saw it", w)
    _, i3 = c.session.info(s3)
    expect(i3 is None, "session.info(s3) after destroy is None", i3)
    _, lst = c.session.list()
    ids = {s["ID"] for s in lst}
    expect(not ids & {s1, s2, s3, sc}, "session.list has none of the test's sessions", sorted(ids & {s1, s2, s3, sc}))
    c.kv.delete(prefix, recurse=True)
    _, left = c.kv.get(prefix, recurse=True)
    expect(left is None, "cleanup: the test prefix is empty", left)
    print("PASS: Patroni's python-consul session sequence against %s" % args.addr)


if __name__ == "__main__":
    try:
        main()
    except Failure as f:
        print("FAIL: %s" % f)
        sys.exit(1)
    except Exception as e:  # an unexpected exception is a failure too, with its type
        import traceback
        traceback.print_exc()
        print("FAIL: unexpected %s: %s" % (type(e).__name__, e))
        sys.exit(1)
