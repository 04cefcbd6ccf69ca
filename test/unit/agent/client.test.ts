// src/agent/client.ts in process: its helpers, and the secret cache's two kinds of answer (the rest
// of the client is exercised through the binary).
import { describe, expect, test } from "bun:test";
import { AgentClient, redactUserinfo } from "../../../src/agent/client.ts";
import { AGENT_TOKEN, startAgent } from "../../helpers/agent.ts";

test("redactUserinfo drops a user:password before the host, nothing else", () => {
  expect(redactUserinfo("http://u:pw@127.0.0.1:7/base/v1/ready")).toBe("http://127.0.0.1:7/base/v1/ready");
  expect(redactUserinfo("https://token@agent.local/v1/ready")).toBe("https://agent.local/v1/ready");
  expect(redactUserinfo("http://127.0.0.1:7/a@b")).toBe("http://127.0.0.1:7/a@b");
  expect(redactUserinfo("http://h/v1/ready")).toBe("http://h/v1/ready");
});

describe("AgentClient.secret against a scripted agent on loopback", () => {
  test("a cached value comes back as it is; a fetch, joined by concurrent asks, as a promise", async () => {
    const agent = startAgent({ secrets: { "ns/KEY": "s3cret" } });
    try {
      const client = new AgentClient(agent.url, AGENT_TOKEN);
      const first = client.secret("ns", "KEY");
      const second = client.secret("ns", "KEY");
      expect(first).toBeInstanceOf(Promise);
      expect(await first).toBe("s3cret");
      expect(await second).toBe("s3cret");
      // within the cache's lifetime: the value itself, no promise, no agent call
      expect(client.secret("ns", "KEY")).toBe("s3cret");
      expect(agent.calls.filter((c) => c.path.includes("/v1/secrets/")).length).toBe(1);
    } finally {
      agent.stop();
    }
  });

  test("a bad namespace or key is a rejected promise, never a throw", async () => {
    const client = new AgentClient("http://127.0.0.1:9", AGENT_TOKEN);
    let r: string | Promise<string> = "";
    expect(() => {
      r = client.secret("bad ns", "KEY");
    }).not.toThrow();
    await expect(r).rejects.toThrow("agent: invalid namespace");
    await expect(Promise.resolve(client.secret("ns", "bad key"))).rejects.toThrow("agent: invalid key");
  });
});
