// src/agent/client.ts helpers in process (the client itself is exercised through the binary).
import { expect, test } from "bun:test";
import { redactUserinfo } from "../../../src/agent/client.ts";

test("redactUserinfo drops a user:password before the host, nothing else", () => {
  expect(redactUserinfo("http://u:pw@127.0.0.1:7/base/v1/ready")).toBe("http://127.0.0.1:7/base/v1/ready");
  expect(redactUserinfo("https://token@agent.local/v1/ready")).toBe("https://agent.local/v1/ready");
  expect(redactUserinfo("http://127.0.0.1:7/a@b")).toBe("http://127.0.0.1:7/a@b");
  expect(redactUserinfo("http://h/v1/ready")).toBe("http://h/v1/ready");
});
