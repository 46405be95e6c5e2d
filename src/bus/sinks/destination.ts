import { lookup as dnsLookup } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * Where webhook sinks may connect. A tenant chooses the URL, so without this check Herald would POST its
 * events to whatever the URL names: cloud metadata (169.254.169.254), the database, internal admin ports.
 * Only public unicast addresses are reached, plus the networks the operator lists.
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Network = [Address, number];

export interface DestinationPolicy {
  /** Networks sinks may reach despite the deny list (HERALD_WEBHOOK_ALLOWED_NETWORKS). */
  readonly allowedNetworks: readonly Network[];
}

/** Public addresses only: the default wherever no policy is passed. */
export const denyAll: DestinationPolicy = Object.freeze({ allowedNetworks: Object.freeze([]) });

/** A policy allowing the given CIDRs (`10.20.0.0/16`, `::1/128`) on top of the public addresses. */
export function destinationPolicy(allowedNetworks: readonly string[] = []): DestinationPolicy {
  return {
    allowedNetworks: allowedNetworks.map((cidr) => {
      if (!ipaddr.isValidCIDR(cidr.trim())) {
        throw new Error(`"${cidr}" is not a network in CIDR notation (such as 10.20.0.0/16 or fd00::/8)`);
      }
      return ipaddr.parseCIDR(cidr.trim());
    }),
  };
}

/** A connection refused because of where it would go; a failed delivery attempt like any other. */
export class DeniedDestinationError extends Error {
  override name = "DeniedDestinationError";
  readonly code = "ERR_DESTINATION_DENIED";
  constructor(
    readonly address: string,
    readonly network: string,
    hostname?: string,
  ) {
    super(
      `destination ${address}${hostname && hostname !== address ? ` (${hostname})` : ""} is in a denied ` +
        `network (${network}); allow it with HERALD_WEBHOOK_ALLOWED_NETWORKS`,
    );
  }
}

/**
 * The IPv4 address an IPv6 one stands for: IPv4-mapped `::ffff:a.b.c.d` (dialled as IPv4 by the kernel) and
 * the deprecated IPv4-compatible `::a.b.c.d`, which ipaddr.js would otherwise call plain unicast.
 */
function embeddedIPv4(address: Address): ipaddr.IPv4 | undefined {
  if (address.kind() === "ipv4") return undefined;
  const v6 = address as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  const [a, b, c, d, e, f, high = 0, low = 0] = v6.parts;
  const compatible = a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0;
  // `::` and `::1` are IPv6's own unspecified and loopback addresses, named as such.
  if (!compatible || (high === 0 && low <= 1)) return undefined;
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

const inNetworks = (address: Address, networks: readonly Network[]) =>
  networks.some(([base, bits]) => base.kind() === address.kind() && address.match(base, bits));

/**
 * The denied network an IP address is in (ipaddr.js's range name: `loopback`, `private`, `linkLocal`, …),
 * or undefined when sinks may connect to it. Anything but public unicast is denied unless allowed.
 */
export function deniedNetwork(address: string, policy: DestinationPolicy = denyAll): string | undefined {
  let parsed: Address;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return "not an IP address";
  }
  const v4 = embeddedIPv4(parsed);
  if (inNetworks(parsed, policy.allowedNetworks) || (v4 && inNetworks(v4, policy.allowedNetworks))) {
    return undefined;
  }
  const range = (v4 ?? parsed).range();
  return range === "unicast" ? undefined : range;
}

/** Throw `DeniedDestinationError` unless sinks may connect to this IP address. */
export function checkDestination(address: string, policy: DestinationPolicy, hostname?: string): void {
  const network = deniedNetwork(address, policy);
  if (network !== undefined) throw new DeniedDestinationError(address, network, hostname);
}

/**
 * A `lookup` for sockets (an HTTP agent's option): resolves like `dns.lookup`, then drops the denied
 * addresses, so the check is made on the address actually dialled (names resolving to private addresses,
 * DNS rebinding). Fails when none is left. Node never calls it for IP literals: check those directly.
 */
export function guardedLookup(policy: DestinationPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, "");
      const allowed = addresses.filter((a) => deniedNetwork(a.address, policy) === undefined);
      const first = allowed[0];
      if (!first) {
        const refused = addresses[0];
        const network = refused ? deniedNetwork(refused.address, policy)! : "no address";
        return callback(new DeniedDestinationError(refused?.address ?? hostname, network, hostname), "");
      }
      if (options.all) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * Why a webhook URL can never be delivered to, known without resolving a name: not http(s), or a literal
 * IP address that is denied. Undefined when it may be tried (a name is checked when it is dialled).
 */
export function webhookUrlProblem(url: string, policy: DestinationPolicy = denyAll): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a URL";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return "must be an http or https URL";
  // WHATWG URLs write every IPv4 notation (127.1, 2130706433, 0x7f000001) as dotted decimal.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const network = isIP(host) ? deniedNetwork(host, policy) : undefined;
  return network === undefined ? undefined : new DeniedDestinationError(host, network).message;
}
