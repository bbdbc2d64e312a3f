// Compile-time checks of the types json-schema-to-typescript generates from spec/schema.
// scripts/check-clients.sh compiles this file with `tsc --strict` next to the generated
// declarations (in ./generated/). Each check fails to compile if the unions are not
// discriminated by `type` (for example if a message type degraded to `any`).

import type {
  ClientMessage,
  Create,
  Ping,
  Watch,
} from "./generated/client-message.schema";
import type {
  Change,
  ServerMessage,
  TypingNotice,
  Watching,
} from "./generated/server-message.schema";
import type { Watch as WatchFromItsOwnFile } from "./generated/client/watch.schema";

/** `true` when `T` is a union of string literals rather than `string` or `any`. */
type IsLiteralUnion<T> = 0 extends 1 & T ? false : string extends T ? false : true;
/** `true` when `A` and `B` are the same type. */
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

const clientTagsAreLiterals: IsLiteralUnion<ClientMessage["type"]> = true;
const serverTagsAreLiterals: IsLiteralUnion<ServerMessage["type"]> = true;
// Narrowing a union member by its tag yields exactly the generated interface.
const watchByTag: Equals<Extract<ClientMessage, { type: "watch" }>, Watch> = true;
const changeByTag: Equals<Extract<ServerMessage, { type: "change" }>, Change> = true;
const watchingByTag: Equals<Extract<ServerMessage, { type: "watching" }>, Watching> = true;
// `typing` is a request (with an `id`) and a push (without one): one tag per direction.
const typingPush: Equals<Extract<ServerMessage, { type: "typing" }>, TypingNotice> = true;
// The per-message files declare the same shapes as the unions.
const sameWatch: Equals<Watch, WatchFromItsOwnFile> = true;

export const checks = [
  clientTagsAreLiterals,
  serverTagsAreLiterals,
  watchByTag,
  changeByTag,
  watchingByTag,
  typingPush,
  sameWatch,
];

/** A switch on `type` narrows a server message to its interface. */
export function describe(message: ServerMessage): string {
  switch (message.type) {
    case "welcome":
      return `${message.server.name} ${message.protocol}, ${message.limits.max_message_bytes} bytes per frame`;
    case "watching": {
      const token: string = message.resume_token;
      // @ts-expect-error a resume token is a string, not a number
      const wrong: number = message.resume_token;
      return `watching ${message.subscription} from ${token}${wrong}`;
    }
    case "change": {
      const recordId: string = message.event.document_key._id;
      const operation: "insert" | "update" | "delete" = message.event.operation_type;
      return `${operation} ${message.event.ns.database}.${message.event.ns.collection}/${recordId}`;
    }
    case "created":
      return `created ${JSON.stringify(message.record)}`;
    case "error":
      return `${message.error.code}: ${message.error.message}`;
    case "typing":
      return `${message.member.principal} is ${message.active ? "" : "not "}typing`;
    default:
      return message.type;
  }
}

// Client messages are checked as they are written.
export const ping: Ping = { type: "ping", id: "p1", payload: 42 };
export const anyPayload: ClientMessage[] = [
  { type: "ping", id: "p2", payload: "text" },
  { type: "ping", id: "p3", payload: [1, { nested: true }] },
  { type: "ping", id: "p4" },
];
export const create: Create = {
  type: "create",
  id: "c1",
  database: "app",
  collection: "users",
  record: { _id: "user1", name: "Ada" },
};
export const watch: ClientMessage = {
  type: "watch",
  id: "w1",
  database: "app",
  collection: "users",
  full_document: true,
};
// @ts-expect-error a request id is a string
export const numericId: ClientMessage = { type: "get_stats", id: 7 };
// @ts-expect-error `create` requires a record
export const missingRecord: ClientMessage = { type: "create", id: "c2", database: "app", collection: "users" };
// @ts-expect-error there is no client message of type `created`
export const wrongDirection: ClientMessage = { type: "created", id: "c3", record: {} };
