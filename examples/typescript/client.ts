// A minimal Tidewire client: connects, watches a collection, creates a record in it,
// prints the change event the watch delivers, and exits 0.
//
//   node dist/client.js ws://127.0.0.1:PORT/v1 [TOKEN]
//
// The message types, `encode` and `decode` come from the package tidewire-protocol (see
// docs/clients.md); the WebSocket client is the `ws` package.

import WebSocket from "ws";
import { type ClientMessage, SUBPROTOCOL, decode, encode } from "tidewire-protocol";

const TIMEOUT_MS = 10_000;

const url = process.argv[2] ?? process.env.TIDEWIRE_URL ?? "ws://127.0.0.1:8080/v1";
const token = process.argv[3] ?? process.env.TIDEWIRE_TOKEN;
const database = "examples";
const collection = "notes";
// A fresh id per run, so that the change printed is the one this run caused.
const recordId = `ts-${process.pid}-${Date.now()}`;

function fail(reason: string): never {
  console.error(`error: ${reason}`);
  process.exit(1);
}

const timer = setTimeout(() => fail(`no change event within ${TIMEOUT_MS} ms`), TIMEOUT_MS);

const socket = new WebSocket(url, SUBPROTOCOL);

function send(message: ClientMessage): void {
  socket.send(encode(message));
}

function watch(): void {
  send({ type: "watch", id: "watch-1", database, collection });
}

let created = false;
let changed = false;

function finishWhenDone(): void {
  if (created && changed) {
    clearTimeout(timer);
    socket.close(1000);
  }
}

socket.on("open", () => {
  if (socket.protocol !== SUBPROTOCOL) {
    fail(`the server selected subprotocol ${JSON.stringify(socket.protocol)}, not ${SUBPROTOCOL}`);
  }
});

socket.on("message", (data: WebSocket.RawData) => {
  // decode validates the frame against the schema of its `type` and throws when it is not
  // a valid server message, so a broken server fails here rather than deep in a handler.
  const message = decode(data.toString());
  switch (message.type) {
    case "welcome":
      console.log(`connected to ${message.server.name} ${message.server.version} (${message.protocol})`);
      if (message.auth.mode === "required" && message.auth.principal == null) {
        if (token === undefined) {
          fail("the server requires authentication: pass a token as the second argument");
        }
        send({ type: "auth", id: "auth-1", token });
      } else {
        watch();
      }
      break;
    case "authenticated":
      console.log(`authenticated as ${message.principal}`);
      watch();
      break;
    case "watching":
      console.log(`watching ${database}.${collection} as subscription ${message.subscription}`);
      send({
        type: "create",
        id: "create-1",
        database,
        collection,
        record: { _id: recordId, text: "hello from TypeScript" },
      });
      break;
    case "created":
      console.log(`created ${message.record._id}: ${JSON.stringify(message.record)}`);
      created = true;
      finishWhenDone();
      break;
    case "change":
      if (message.event.document_key._id === recordId) {
        console.log(`change: ${JSON.stringify(message.event)}`);
        changed = true;
        finishWhenDone();
      }
      break;
    case "error":
      fail(`${message.error.code}: ${message.error.message} (request ${message.id ?? "none"})`);
    default:
      break;
  }
});

socket.on("error", (err: Error) => fail(`${url}: ${err.message}`));

socket.on("close", (code: number, reason: Buffer) => {
  if (!(created && changed)) {
    fail(`connection closed (${code} ${reason.toString()}) before the change event`);
  }
  process.exit(0);
});
