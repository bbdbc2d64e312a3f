// Tests of the packed npm package, compiled (`tsc --strict`) and run by
// scripts/check-clients.sh in a fresh project that installed the tarball, as a user would.
//
// The `@ts-expect-error` lines are the compile-time tests: tsc fails if the line below one
// compiles, so each proves that the package rejects that mistake.

import assert from "node:assert/strict";

import {
  type ClientMessage,
  type Change,
  type Created,
  type ServerMessage,
  type Watch,
  InvalidServerMessage,
  SUBPROTOCOL,
  decode,
  encode,
  isServerMessage,
} from "tidewire-protocol";

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

// --- Requests are closed: a misspelt member is a compile error --------------------------

export const typoAsMessage: ClientMessage = {
  type: "watch",
  id: "w1",
  // @ts-expect-error `databse` is not a member of `watch` (the typo of issue #19)
  databse: "app",
  colection: "todos",
};
// @ts-expect-error `colection` is not a member of `watch` either
export const typoAsWatch: Watch = { type: "watch", id: "w1", database: "app", colection: "todos" };
// @ts-expect-error encode takes requests only, as written
export const typoEncoded = encode({ type: "watch", id: "w1", databse: "app" });
// A nested request object is closed too: a sort key has `field` and `order`.
export const typoNested: ClientMessage = {
  type: "read",
  id: "r1",
  database: "app",
  collection: "todos",
  // @ts-expect-error `ordr` is not a member of a sort key
  sort: [{ field: "due", ordr: "asc" }],
};
// Free-form objects stay free-form: a record and a filter take any member.
export const create: ClientMessage = {
  type: "create",
  id: "c1",
  database: "app",
  collection: "todos",
  record: { _id: "t1", title: "write tests", done: false },
};
export const watch: ClientMessage = {
  type: "watch",
  id: "w1",
  database: "app",
  collection: "todos",
  filter: { done: { $eq: false } },
};

// --- Server messages are open, and typed ------------------------------------------------

// A member a later revision adds is accepted (TW-CORE-6).
export const openChange: Change = {
  type: "change",
  subscription: "s1",
  event: {
    operation_type: "insert",
    ns: { database: "app", collection: "todos" },
    document_key: { _id: "t1" },
    resume_token: "r1",
    committed_at: "2026-01-24T10:30:00.123Z",
    added_in_a_later_revision: true,
  },
};
const recordIdIsString: Equals<Created["record"]["_id"], string> = true;
const serverTagsAreLiterals: Equals<string extends ServerMessage["type"] ? true : false, false> = true;
const subprotocol: "tidewire.v1" = SUBPROTOCOL;

function describe(message: ServerMessage): string {
  switch (message.type) {
    case "created":
      return message.record._id;
    case "change":
      return `${message.event.operation_type} ${message.event.document_key._id}`;
    default:
      return message.type;
  }
}

// --- Runtime: encode and decode ---------------------------------------------------------

assert.equal(encode({ type: "ping", id: "p1" }), '{"type":"ping","id":"p1"}');

const created = decode('{"type":"created","id":"c1","record":{"_id":"t1","title":"x"},"later":1}');
assert.equal(describe(created), "t1");
assert.equal((created as Created & { later: number }).later, 1, "unknown members are kept");

const change = {
  type: "change",
  subscription: "s1",
  event: {
    operation_type: "insert",
    ns: { database: "app", collection: "todos" },
    document_key: { _id: "t1" },
    full_document: { _id: "t1", title: "x" },
    resume_token: "r1",
    committed_at: "2026-01-24T10:30:00.123Z",
  },
};
assert.ok(isServerMessage(change), "a valid change is a server message");
assert.equal(describe(decode(JSON.stringify(change))), "insert t1");

/** The issues `decode` reports for a frame, failing if it decodes. */
function decodeIssues(frame: string): InvalidServerMessage {
  try {
    decode(frame);
  } catch (error) {
    assert.ok(error instanceof InvalidServerMessage, `decode threw ${String(error)}`);
    return error;
  }
  assert.fail(`decode accepted ${frame}`);
}

// One malformed member of a `change` is one issue, not one per server message type.
const malformed = decodeIssues(JSON.stringify({ ...change, event: { ...change.event, operation_type: "upsert" } }));
assert.equal(malformed.issues.length, 1, malformed.message);
assert.equal(malformed.issues[0].path, "/event/operation_type");
// A stored record without its `_id` is not what the server sends.
const noId = decodeIssues('{"type":"created","id":"c1","record":{"title":"x"}}');
assert.deepEqual(noId.issues.map((issue) => issue.path), ["/record"]);
assert.equal(decodeIssues('{"type":"no_such_type"}').issues[0].path, "/type");
assert.equal(decodeIssues("[1]").issues[0].path, "");
assert.equal(decodeIssues("{").issues[0].path, "");
// `date-time` is checked.
decodeIssues(JSON.stringify({ ...change, event: { ...change.event, committed_at: "yesterday" } }));

export const checks = [recordIdIsString, serverTagsAreLiterals, subprotocol];
console.log("tidewire-protocol (npm): closed requests, open typed server messages, encode/decode: ok");
