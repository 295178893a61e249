// One scenario of the official JavaScript SDK (@azure/service-bus 7.9) against the emulator.
//
// Usage: node scenarios.cjs <scenario> '<json arguments>', with SERVICEBUS_CONNECTION_STR in the
// environment. Prints one JSON line: what the scenario observed, or {"error": ..., "code": ...} when the
// SDK raised (the exit code is then 2). The assertions live in the Python test that runs it.
"use strict";

const { ServiceBusClient } = require("@azure/service-bus");

const WAIT = { maxWaitTimeInMs: 5000 };
const QUICK = { maxWaitTimeInMs: 500 };

function bodies(messages) {
  return messages.map((m) => m.body).sort();
}

async function receiveAll(receiver, count, options = WAIT) {
  const got = [];
  while (got.length < count) {
    const batch = await receiver.receiveMessages(count - got.length, options);
    if (batch.length === 0) break;
    got.push(...batch);
  }
  return got;
}

async function drain(client, queue, count, options = {}) {
  const receiver = client.createReceiver(queue, options);
  const got = await receiveAll(receiver, count);
  const extra = await receiver.receiveMessages(10, QUICK);
  for (const message of [...got, ...extra]) await receiver.completeMessage(message);
  await receiver.close();
  return { bodies: bodies([...got, ...extra]), ids: got.map((m) => m.messageId) };
}

const scenarios = {
  async sendSingle(client, { queue }) {
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: "single" });
    await sender.close();
    return drain(client, queue, 1);
  },

  async sendArray(client, { queue }) {
    const sender = client.createSender(queue);
    await sender.sendMessages([{ body: "a" }, { body: "b" }, { body: "c" }]);
    await sender.close();
    return drain(client, queue, 3);
  },

  async sendBatch(client, { queue }) {
    const sender = client.createSender(queue);
    const batch = await sender.createMessageBatch();
    for (const body of ["x", "y", "z"]) {
      if (!batch.tryAddMessage({ body, applicationProperties: { kind: "batched" } })) {
        throw new Error("the batch is full");
      }
    }
    await sender.sendMessages(batch);
    await sender.close();
    const receiver = client.createReceiver(queue);
    const got = await receiveAll(receiver, 3);
    const extra = await receiver.receiveMessages(10, QUICK);
    for (const message of [...got, ...extra]) await receiver.completeMessage(message);
    await receiver.close();
    return {
      bodies: bodies([...got, ...extra]),
      kinds: got.map((m) => (m.applicationProperties || {}).kind),
    };
  },

  async noMessageId(client, { queue }) {
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: "anonymous" });
    await sender.close();
    const receiver = client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, WAIT);
    await receiver.completeMessage(message);
    const left = await receiver.peekMessages(10);
    await receiver.close();
    return { messageId: message.messageId ?? null, left: left.length };
  },

  async complete(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "done" });
    const receiver = client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, WAIT);
    await receiver.completeMessage(message);
    const again = await receiver.receiveMessages(1, QUICK);
    await receiver.close();
    return { body: message.body, again: again.length };
  },

  async abandon(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "again", messageId: "abandon-1" });
    const receiver = client.createReceiver(queue);
    const [first] = await receiver.receiveMessages(1, WAIT);
    await receiver.abandonMessage(first, { reason: "retry" });
    const [second] = await receiver.receiveMessages(1, WAIT);
    await receiver.completeMessage(second);
    await receiver.close();
    return {
      first: first.deliveryCount,
      second: second.deliveryCount,
      modified: (second.applicationProperties || {}).reason ?? null,
    };
  },

  async deadLetter(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "poison" });
    const receiver = client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, WAIT);
    await receiver.deadLetterMessage(message, {
      deadLetterReason: "Unreadable",
      deadLetterErrorDescription: "no schema",
    });
    await receiver.close();
    const dlq = client.createReceiver(queue, { subQueueType: "deadLetter" });
    const [dead] = await dlq.receiveMessages(1, WAIT);
    await dlq.completeMessage(dead);
    await dlq.close();
    return {
      body: dead.body,
      reason: dead.deadLetterReason,
      description: dead.deadLetterErrorDescription,
    };
  },

  async defer(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "later" });
    const receiver = client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, WAIT);
    const sequence = message.sequenceNumber;
    await receiver.deferMessage(message);
    const meanwhile = await receiver.receiveMessages(1, QUICK);
    const [deferred] = await receiver.receiveDeferredMessages(sequence);
    const state = deferred.state;
    await receiver.completeMessage(deferred);
    let after = null;
    try {
      await receiver.receiveDeferredMessages(sequence);
    } catch (error) {
      after = error.code; // completed: Azure answers MessageNotFound
    }
    await receiver.close();
    return { meanwhile: meanwhile.length, body: deferred.body, state, after };
  },

  async scheduleAndCancel(client, { queue }) {
    const sender = client.createSender(queue);
    const soon = new Date(Date.now() + 3000); // far enough that the checks below run before it
    const [kept] = await sender.scheduleMessages({ body: "kept" }, soon);
    const [cancelled] = await sender.scheduleMessages({ body: "cancelled" }, soon);
    await sender.cancelScheduledMessages(cancelled);
    await sender.close();
    const receiver = client.createReceiver(queue);
    const peeked = await receiver.peekMessages(10, { fromSequenceNumber: kept });
    const early = await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 });
    const got = await receiveAll(receiver, 1, { maxWaitTimeInMs: 10000 });
    const extra = await receiver.receiveMessages(5, { maxWaitTimeInMs: 1000 });
    for (const message of [...got, ...extra]) await receiver.completeMessage(message);
    await receiver.close();
    return {
      peeked: peeked.map((m) => m.state),
      early: early.length,
      bodies: bodies([...got, ...extra]),
    };
  },

  async peek(client, { queue }) {
    const sender = client.createSender(queue);
    await sender.sendMessages([{ body: "p1" }, { body: "p2" }]);
    await sender.close();
    const receiver = client.createReceiver(queue);
    const peeked = await receiver.peekMessages(10);
    await receiver.close();
    const drained = await drain(client, queue, 2);
    return { peeked: bodies(peeked), drained: drained.bodies };
  },

  async peekOnly(client, { queue }) {
    // A fresh client whose only link to the entity is its management link.
    const receiver = client.createReceiver(queue);
    const peeked = await receiver.peekMessages(10);
    await receiver.close();
    return { peeked: bodies(peeked) };
  },

  async renewLock(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "slow" });
    const receiver = client.createReceiver(queue);
    const [message] = await receiver.receiveMessages(1, WAIT);
    const before = message.lockedUntilUtc.getTime();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = (await receiver.renewMessageLock(message)).getTime();
    await receiver.completeMessage(message);
    await receiver.close();
    return { before, after };
  },

  async ttl(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "short-lived", timeToLive: 300 });
    await new Promise((resolve) => setTimeout(resolve, 800));
    const receiver = client.createReceiver(queue);
    const live = await receiver.receiveMessages(1, QUICK);
    await receiver.close();
    const dlq = client.createReceiver(queue, { subQueueType: "deadLetter" });
    const dead = await receiveAll(dlq, 1);
    for (const message of dead) await dlq.completeMessage(message);
    await dlq.close();
    return { live: live.length, dead: bodies(dead), reason: dead.map((m) => m.deadLetterReason) };
  },

  async maxDelivery(client, { queue, attempts }) {
    await client.createSender(queue).sendMessages({ body: "flaky" });
    const receiver = client.createReceiver(queue);
    const counts = [];
    for (let i = 0; i < attempts; i += 1) {
      const [message] = await receiver.receiveMessages(1, WAIT);
      if (!message) break;
      counts.push(message.deliveryCount);
      await receiver.abandonMessage(message);
    }
    const more = await receiver.receiveMessages(1, QUICK);
    await receiver.close();
    const dlq = client.createReceiver(queue, { subQueueType: "deadLetter" });
    const dead = await receiveAll(dlq, 1);
    for (const message of dead) await dlq.completeMessage(message);
    await dlq.close();
    return { counts, more: more.length, dead: bodies(dead), reason: dead.map((m) => m.deadLetterReason) };
  },

  async duplicates(client, { queue }) {
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: "first", messageId: "same-id" });
    await sender.sendMessages({ body: "second", messageId: "same-id" });
    await sender.sendMessages({ body: "other", messageId: "other-id" });
    await sender.close();
    return drain(client, queue, 2);
  },

  async filters(client, { topic, subscriptions }) {
    const sender = client.createSender(topic);
    await sender.sendMessages([
      { body: "big-eu", applicationProperties: { amount: 500, area: "eu" } },
      { body: "small-eu", applicationProperties: { amount: 5, area: "eu" } },
      { body: "customer", subject: "customer", applicationProperties: { amount: 1, area: "us" } },
    ]);
    await sender.close();
    const result = {};
    for (const name of subscriptions) {
      const receiver = client.createReceiver(topic, name);
      const got = await receiveAll(receiver, 1);
      const extra = await receiver.receiveMessages(10, QUICK);
      for (const message of [...got, ...extra]) await receiver.completeMessage(message);
      await receiver.close();
      result[name] = bodies([...got, ...extra]);
    }
    return result;
  },

  async autoForward(client, { source, target }) {
    await client.createSender(source).sendMessages({ body: "forwarded" });
    return drain(client, target, 1);
  },

  async sessionAccept(client, { queue }) {
    const sender = client.createSender(queue);
    await sender.sendMessages([
      { body: "s1-a", sessionId: "s1" },
      { body: "s2-a", sessionId: "s2" },
      { body: "s1-b", sessionId: "s1" },
    ]);
    await sender.close();
    const receiver = await client.acceptSession(queue, "s1");
    const got = await receiveAll(receiver, 2);
    for (const message of got) await receiver.completeMessage(message);
    const lockedUntil = receiver.sessionLockedUntilUtc.getTime();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const renewed = (await receiver.renewSessionLock()).getTime();
    await receiver.close();
    const next = await client.acceptNextSession(queue);
    const other = await receiveAll(next, 1);
    for (const message of other) await next.completeMessage(message);
    const nextId = next.sessionId;
    await next.close();
    return {
      s1: got.map((m) => m.body),
      sessionIds: got.map((m) => m.sessionId),
      lockedUntil,
      renewed,
      nextId,
      next: bodies(other),
    };
  },

  async sessionState(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "stateful", sessionId: "st" });
    const receiver = await client.acceptSession(queue, "st");
    const empty = await receiver.getSessionState();
    await receiver.setSessionState("step-2");
    const [message] = await receiver.receiveMessages(1, WAIT);
    await receiver.completeMessage(message);
    await receiver.close();
    const again = await client.acceptSession(queue, "st");
    const state = await again.getSessionState();
    await again.close();
    return { empty: empty ?? null, state: state ? Buffer.from(state).toString() : null };
  },

  async receiverKinds(client, { sessionQueue, plainQueue }) {
    await client.createSender(sessionQueue).sendMessages({ body: "kept", sessionId: "s" });
    const plain = client.createReceiver(sessionQueue);
    const result = {};
    try {
      result.received = (await plain.receiveMessages(1, WAIT)).length;
    } catch (error) {
      result.receiveError = { name: error.name, code: error.code ?? null, message: String(error.message) };
    }
    // This SDK peeks over $management alone, without the receiving link Azure refuses.
    result.peeked = bodies(await plain.peekMessages(10));
    await plain.close();
    await client.createSender(plainQueue).sendMessages({ body: "plain", sessionId: "s" });
    try {
      const granted = await client.acceptSession(plainQueue, "s", { maxAutoLockRenewalDurationInMs: 0 });
      result.accepted = (await granted.receiveMessages(1, QUICK)).length;
      await granted.close();
    } catch (error) {
      result.acceptError = { name: error.name, code: error.code ?? null };
    }
    return result;
  },

  async sessionLocked(client, { queue }) {
    await client.createSender(queue).sendMessages({ body: "held", sessionId: "held" });
    const holder = await client.acceptSession(queue, "held");
    const other = new ServiceBusClient(process.env.SERVICEBUS_CONNECTION_STR, client.__options);
    try {
      await other.acceptSession(queue, "held", { maxAutoLockRenewalDurationInMs: 0 });
      return { refused: false };
    } catch (error) {
      return { refused: true, name: error.name, code: error.code ?? null };
    } finally {
      await other.close();
      await holder.close();
    }
  },
};

async function main() {
  const [name, raw] = process.argv.slice(2);
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`no scenario ${name}`);
  const options = { retryOptions: { maxRetries: 0, timeoutInMs: 10000 } };
  const client = new ServiceBusClient(process.env.SERVICEBUS_CONNECTION_STR, options);
  client.__options = options;
  try {
    const result = await scenario(client, JSON.parse(raw || "{}"));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await client.close();
  }
}

main().catch((error) => {
  process.stdout.write(
    `${JSON.stringify({ error: error.name, code: error.code ?? null, message: String(error.message) })}\n`,
  );
  process.exit(2);
});
