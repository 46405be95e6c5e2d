import type { LookupAddress } from "node:dns";
import { describe, expect, it } from "vitest";
import {
  DeniedDestinationError,
  deniedNetwork,
  denyAll,
  destinationPolicy,
  guardedLookup,
  webhookUrlProblem,
} from "../src/bus/sinks/destination.js";
import { ConfigError, loadConfig } from "../src/config.js";

describe("webhook destination policy", () => {
  it.each([
    ["169.254.169.254", "linkLocal"], // cloud metadata
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "carrierGradeNat"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.1", "reserved"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["fe80::1", "linkLocal"],
    ["fc00::1", "uniqueLocal"],
    ["fd12:3456::1", "uniqueLocal"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "reserved"],
    // IPv6 forms of IPv4 addresses are judged by the IPv4 address they carry.
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "linkLocal"],
    ["::127.0.0.1", "loopback"],
    ["::10.0.0.1", "private"],
    // NAT64 and tunnel prefixes can carry an internal IPv4 address too.
    ["64:ff9b::a00:1", "rfc6052"],
    ["2002:a00:1::1", "6to4"],
  ])("denies %s (%s)", (address, network) => {
    expect(deniedNetwork(address)).toBe(network);
    expect(deniedNetwork(address, denyAll)).toBe(network);
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",
  ])("allows the public address %s", (address) => {
    expect(deniedNetwork(address)).toBeUndefined();
  });

  it("denies what is not an IP address", () => {
    expect(deniedNetwork("localhost")).toBe("not an IP address");
  });

  it("allows the listed networks, IPv4 and IPv6, and nothing next to them", () => {
    const policy = destinationPolicy(["10.20.0.0/16", "127.0.0.0/8", "::1/128", "fd00:1::/32"]);
    expect(deniedNetwork("10.20.3.4", policy)).toBeUndefined();
    expect(deniedNetwork("10.21.0.1", policy)).toBe("private");
    expect(deniedNetwork("127.0.0.1", policy)).toBeUndefined();
    expect(deniedNetwork("::ffff:127.0.0.1", policy)).toBeUndefined(); // the same IPv4 address
    expect(deniedNetwork("::1", policy)).toBeUndefined();
    expect(deniedNetwork("::2", policy)).toBe("unspecified"); // ::0.0.0.2, IPv4-compatible
    expect(deniedNetwork("fd00:1:2::3", policy)).toBeUndefined();
    expect(deniedNetwork("fd00:2::3", policy)).toBe("uniqueLocal");
    expect(deniedNetwork("169.254.169.254", policy)).toBe("linkLocal");
    // An IPv4 network does not open IPv6 loopback, nor the other way round.
    expect(deniedNetwork("::1", destinationPolicy(["127.0.0.0/8"]))).toBe("loopback");
    expect(deniedNetwork("127.0.0.1", destinationPolicy(["::1/128"]))).toBe("loopback");
  });

  it("refuses an allow-list entry that is not a CIDR, saying so", () => {
    expect(() => destinationPolicy(["10.0.0.0"])).toThrow(/"10.0.0.0" is not a network in CIDR notation/);
    expect(() => destinationPolicy(["example.com/8"])).toThrow(/CIDR/);
    expect(() => destinationPolicy(["10.0.0.0/33"])).toThrow(/CIDR/);
  });

  it("names the address, its network and the way to allow it", () => {
    const error = new DeniedDestinationError("127.0.0.1", "loopback");
    expect(error.message).toBe(
      "destination 127.0.0.1 is in a denied network (loopback); allow it with HERALD_WEBHOOK_ALLOWED_NETWORKS",
    );
    expect(error.code).toBe("ERR_DESTINATION_DENIED");
  });
});

describe("webhook URLs at subscription time", () => {
  it.each([
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1:8443/hook",
    "http://[fe80::1]/",
  ])("refuses the literal denied address in %s", (url) => {
    expect(webhookUrlProblem(url)).toMatch(/is in a denied network \(\w+\)/);
  });

  it("refuses other schemes and non-URLs", () => {
    expect(webhookUrlProblem("ftp://example.com/")).toBe("must be an http or https URL");
    expect(webhookUrlProblem("file:///etc/passwd")).toBe("must be an http or https URL");
    expect(webhookUrlProblem("not a url")).toBe("is not a URL");
  });

  it("leaves names to the connect-time check, and accepts public or allowed addresses", () => {
    expect(webhookUrlProblem("http://localhost:3000/")).toBeUndefined();
    expect(webhookUrlProblem("https://example.com/hook")).toBeUndefined();
    expect(webhookUrlProblem("https://8.8.8.8/hook")).toBeUndefined();
    expect(webhookUrlProblem("http://127.0.0.1:9/", destinationPolicy(["127.0.0.0/8"]))).toBeUndefined();
    expect(webhookUrlProblem("http://[::1]:9/", destinationPolicy(["::1/128"]))).toBeUndefined();
  });
});

describe("the guarded resolver", () => {
  const resolve = (policy: ReturnType<typeof destinationPolicy>, hostname: string, all: boolean) =>
    new Promise<{ error: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>((done) =>
      guardedLookup(policy)(hostname, { all }, (error, address) => done({ error, address })),
    );

  it("refuses a name that resolves to loopback", async () => {
    for (const all of [false, true]) {
      const { error } = await resolve(denyAll, "localhost", all);
      expect(error).toBeInstanceOf(DeniedDestinationError);
      expect(error?.message).toMatch(
        /^destination (127\.0\.0\.1|::1) \(localhost\) is in a denied network \(loopback\)/,
      );
    }
  });

  it("resolves it when its network is allowed, in the form asked for", async () => {
    const policy = destinationPolicy(["127.0.0.0/8", "::1/128"]);
    const one = await resolve(policy, "localhost", false);
    expect(one.error).toBeNull();
    expect(["127.0.0.1", "::1"]).toContain(one.address);
    const all = await resolve(policy, "localhost", true);
    expect(all.error).toBeNull();
    expect(Array.isArray(all.address) && all.address.length).toBeGreaterThan(0);
  });

  it("passes resolution failures through", async () => {
    const { error } = await resolve(denyAll, "no-such-host.invalid", false);
    expect(error?.code).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });
});

describe("HERALD_WEBHOOK_ALLOWED_NETWORKS", () => {
  it("is a comma-separated list of CIDRs, empty when unset", () => {
    expect(loadConfig({}).webhookAllowedNetworks).toEqual([]);
    expect(
      loadConfig({ HERALD_WEBHOOK_ALLOWED_NETWORKS: " 127.0.0.0/8, ::1/128 ,10.20.0.0/16" })
        .webhookAllowedNetworks,
    ).toEqual(["127.0.0.0/8", "::1/128", "10.20.0.0/16"]);
  });

  it("refuses an entry that is not a CIDR with a message naming it", () => {
    expect(() => loadConfig({ HERALD_WEBHOOK_ALLOWED_NETWORKS: "127.0.0.0/8,localhost" })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ HERALD_WEBHOOK_ALLOWED_NETWORKS: "127.0.0.1" })).toThrow(
      /HERALD_WEBHOOK_ALLOWED_NETWORKS: "127.0.0.1" is not a network in CIDR notation/,
    );
  });
});
