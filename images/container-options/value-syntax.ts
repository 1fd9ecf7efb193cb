// Small parsers for the value syntaxes inside options, matching the Go code the docker CLI uses:
// encoding/csv (for --mount, --gpus, --network), net.ParseIP / net.ParseMAC, and go-connections'
// port specs. Each throws a plain Error whose message says what is wrong.
import { isIPv4, isIPv6 } from 'node:net';

/** One record of Go's encoding/csv (comma-separated, `"` quoting with `""` as an escaped quote). */
export function readCsvRecord(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text.charAt(i) === '"') {
      i += 1;
      for (;;) {
        if (i >= text.length) throw new Error('extraneous or missing " in quoted-field');
        const c = text.charAt(i);
        if (c === '"') {
          if (text.charAt(i + 1) === '"') {
            field += '"';
            i += 2;
          } else {
            i += 1;
            break;
          }
        } else {
          field += c;
          i += 1;
        }
      }
      if (i < text.length && text.charAt(i) !== ',') {
        throw new Error('extraneous or missing " in quoted-field');
      }
    } else {
      const end = text.indexOf(',', i);
      field = end === -1 ? text.slice(i) : text.slice(i, end);
      if (field.includes('"')) throw new Error('bare " in non-quoted-field');
      i = end === -1 ? text.length : end;
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i += 1; // the comma
  }
}

/** `key=value` split at the first separator: `[key, value]`, or `[text, undefined]` without one. */
export function splitKeyValue(
  text: string,
  separator = '=',
): [key: string, value: string | undefined] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}

// Go's unicode.IsSpace: JavaScript's trim() also strips U+FEFF and keeps U+0085.
const GO_TRIM =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Go's strings.TrimSpace. */
export function trimSpace(text: string): string {
  return text.replace(GO_TRIM, '');
}

/** Sets `key=value` in the map (a bare `key` to ''), replacing an earlier value. */
export function setKeyValue(map: Record<string, string>, entry: string): void {
  const [key, value] = splitKeyValue(entry);
  map[key] = value ?? '';
}

/** Go's net.ParseIP(...).String(): the canonical text of an IPv4 or IPv6 address, else undefined. */
export function canonicalIp(text: string): string | undefined {
  if (isIPv4(text)) return text.split('.').map(Number).join('.');
  if (!isIPv6(text) || text.includes('%')) return undefined;
  const groups = ipv6Groups(text);
  // IPv4-mapped addresses print as IPv4, like Go.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [a = 0, b = 0] = groups.slice(6);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  // The longest run of two or more zero groups becomes "::" (the first, on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start += 1) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length += 1;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function ipv6Groups(text: string): number[] {
  let body = text;
  const tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = last.split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    body = `${body.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = body.split('::');
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((g) => parseInt(g, 16));
  let groups: number[];
  if (rest === undefined) groups = parse(head);
  else {
    const left = parse(head);
    const right = parse(rest);
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  if (tail.length === 2) groups = [...groups.slice(0, 6), ...tail];
  return groups;
}

/** Go's net.ParseMAC: 6, 8 or 20 octets as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx.xxxx`. */
export function isValidMac(text: string): boolean {
  const colon = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})+$/;
  const dash = /^[0-9a-fA-F]{2}(-[0-9a-fA-F]{2})+$/;
  const dot = /^[0-9a-fA-F]{4}(\.[0-9a-fA-F]{4})+$/;
  let octets: number;
  if (colon.test(text) || dash.test(text)) octets = (text.length + 1) / 3;
  else if (dot.test(text)) octets = ((text.length + 1) / 5) * 2;
  else return false;
  return octets === 6 || octets === 8 || octets === 20;
}

const DOMAIN =
  /^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])))*)\.?\s*$/;

/** The CLI's ValidateDNSSearch: `.` or a domain name; returns the value as the CLI sends it. */
export function validateDnsSearch(value: string): string {
  const trimmed = value.replace(/^ +| +$/g, '');
  if (trimmed === '.') return trimmed;
  const match = /[a-zA-Z]/.test(trimmed) ? DOMAIN.exec(trimmed) : null;
  const domain = match?.[1];
  if (domain === undefined || domain.length >= 255) {
    throw new Error(`${trimmed} is not a valid domain`);
  }
  return domain;
}

export interface PortMapping {
  port: string;
  binding: { HostIp: string; HostPort: string };
}

function parsePortNumber(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new Error(`'${text}' is not a port`);
  return Number(text);
}

/** go-connections' ParsePortRange: `80` or `8000-8010`. */
export function parsePortRange(text: string): { start: number; end: number } {
  if (text === '') throw new Error('empty string specified for ports');
  if (!text.includes('-')) {
    const port = parsePortNumber(text);
    return { start: port, end: port };
  }
  const [first = '', second = ''] = text.split('-');
  const start = parsePortNumber(first);
  const end = parsePortNumber(second);
  if (end < start) throw new Error(`invalid range specified for port: ${text}`);
  return { start, end };
}

/** go-connections' SplitProtoPort: `80/udp` → ['udp', '80']; `80` → ['tcp', '80']. */
export function splitProtoPort(raw: string): [proto: string, port: string] {
  const parts = raw.split('/');
  const first = parts[0] ?? '';
  if (raw === '' || first === '') return ['', ''];
  const second = parts[1];
  if (second === undefined || second === '') return ['tcp', first];
  return [second, first];
}

/** go-connections' ParsePortSpec: `[ip:][hostPort:]containerPort[/proto]` with ranges. */
export function parsePortSpec(raw: string): PortMapping[] {
  const parts = raw.split(':');
  const n = parts.length;
  const last = parts[n - 1] ?? '';
  let ip = n >= 3 ? parts.slice(0, n - 2).join(':') : '';
  let hostPort = n >= 2 ? (parts[n - 2] ?? '') : '';
  const [proto, containerPort] = splitProtoPort(last);
  if (ip.startsWith('[')) {
    if (!ip.endsWith(']')) throw new Error(`invalid IP address ${ip}`);
    ip = ip.slice(1, -1);
  }
  if (ip !== '' && canonicalIp(ip) === undefined) throw new Error(`invalid IP address: ${ip}`);
  if (containerPort === '') throw new Error(`no port specified: ${raw}<empty>`);
  let range: { start: number; end: number };
  try {
    range = parsePortRange(containerPort);
  } catch {
    throw new Error(`invalid containerPort: ${containerPort}`);
  }
  let hostRange = { start: 0, end: 0 };
  if (hostPort !== '') {
    try {
      hostRange = parsePortRange(hostPort);
    } catch {
      throw new Error(`invalid hostPort: ${hostPort}`);
    }
  }
  if (
    hostPort !== '' &&
    range.end - range.start !== hostRange.end - hostRange.start &&
    range.end !== range.start
  ) {
    throw new Error(
      `invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`,
    );
  }
  const protocol = proto.toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(protocol)) throw new Error(`invalid proto: ${proto}`);
  const mappings: PortMapping[] = [];
  for (let i = 0; i <= range.end - range.start; i += 1) {
    if (hostPort !== '') hostPort = String(hostRange.start + i);
    if (range.start === range.end && hostRange.start !== hostRange.end) {
      hostPort = `${hostPort}-${hostRange.end}`;
    }
    mappings.push({
      port: `${range.start + i}/${protocol}`,
      binding: { HostIp: ip, HostPort: hostPort },
    });
  }
  return mappings;
}
