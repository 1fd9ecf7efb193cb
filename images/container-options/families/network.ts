// Networking: --publish, --publish-all, --expose, --add-host, --dns*, --link, --mac-address, --ip,
// --ip6, --link-local-ip, --network and --network-alias.
import type {
  EmptyObject,
  EndpointSettings,
  PortBinding,
  TranslatedOptions,
} from '../container-settings.js';
import { errorMessage, invalid, parsed, type Flags } from '../given-flags.js';
import type { FlagOccurrence } from '../parse-flags.js';
import {
  canonicalIp,
  isValidMac,
  parsePortRange,
  parsePortSpec,
  readCsvRecord,
  splitKeyValue,
  splitProtoPort,
  validateDnsSearch,
} from '../value-syntax.js';

export function translatePorts(flags: Flags, { config, hostConfig }: TranslatedOptions): void {
  const exposed: Record<string, EmptyObject> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const occurrence of flags.all('publish')) {
    let spec = occurrence.value;
    if (spec.includes('=')) {
      const params: Record<string, string> = { protocol: 'tcp' };
      for (const param of spec.split(',')) {
        const [name, value] = splitKeyValue(param);
        if (name === '' || value === undefined) {
          throw invalid(
            occurrence,
            `invalid publish opts format (should be name=value but got '${param}')`,
          );
        }
        params[name] = value;
      }
      spec = `${params.published ?? ''}:${params.target ?? ''}/${params.protocol ?? ''}`;
    }
    for (const mapping of parsed(occurrence, () => parsePortSpec(spec))) {
      exposed[mapping.port] = {};
      (bindings[mapping.port] ??= []).push(mapping.binding);
    }
  }
  for (const occurrence of flags.all('expose')) {
    if (occurrence.value.includes(':')) {
      throw invalid(occurrence, `invalid port format for --expose: ${occurrence.value}`);
    }
    const [proto, port] = splitProtoPort(occurrence.value);
    const range = parsed(occurrence, () => {
      try {
        return parsePortRange(port);
      } catch (error) {
        throw new Error(
          `invalid range format for --expose: ${occurrence.value}, error: ${errorMessage(error)}`,
        );
      }
    });
    for (let p = range.start; p <= range.end; p += 1) exposed[`${p}/${proto}`] = {};
  }
  if (Object.keys(exposed).length > 0) config.ExposedPorts = exposed;
  if (Object.keys(bindings).length > 0) hostConfig.PortBindings = bindings;
  if (flags.boolean('publish-all') === true) hostConfig.PublishAllPorts = true;
}

function isUserDefinedNetwork(mode: string): boolean {
  return !['default', 'bridge', 'host', 'none'].includes(mode) && !mode.startsWith('container:');
}

interface NetworkAttachment {
  target: string;
  aliases: string[];
  driverOpts?: Record<string, string>;
  links: string[];
  ipv4: string;
  ipv6: string;
  linkLocalIps: string[];
  mac: string;
  occurrence: FlagOccurrence;
}

function emptyAttachment(target: string, occurrence: FlagOccurrence): NetworkAttachment {
  return {
    target,
    aliases: [],
    links: [],
    ipv4: '',
    ipv6: '',
    linkLocalIps: [],
    mac: '',
    occurrence,
  };
}

/** One --network: a name, or the CLI's CSV form (`name=net,alias=a,ip=…,driver-opt=k=v`). */
function parseNetworkAttachment(occurrence: FlagOccurrence): NetworkAttachment {
  const value = occurrence.value;
  const attachment = emptyAttachment(value, occurrence);
  if (!/\w+=\w+(,\w+=\w+)*/.test(value)) return attachment;
  attachment.target = '';
  for (const field of parsed(occurrence, readCsvRecord)) {
    const [name, given] = splitKeyValue(field.toLowerCase());
    if (name === '' || given === undefined) throw invalid(occurrence, `invalid field ${field}`);
    const key = name.trim();
    const val = given.trim();
    switch (key) {
      case 'name':
        attachment.target = val;
        break;
      case 'alias':
        attachment.aliases.push(val);
        break;
      case 'ip':
        attachment.ipv4 = val;
        break;
      case 'ip6':
        attachment.ipv6 = val;
        break;
      case 'mac-address':
        attachment.mac = val;
        break;
      case 'link-local-ip':
        attachment.linkLocalIps.push(val);
        break;
      case 'driver-opt': {
        const [option, optionValue] = splitKeyValue(val);
        if (option === '' || optionValue === undefined) {
          throw invalid(occurrence, 'invalid key value pair format in driver options');
        }
        (attachment.driverOpts ??= {})[option.trim()] = optionValue.trim();
        break;
      }
      default:
        throw invalid(occurrence, `invalid field key ${key}`);
    }
  }
  if (attachment.target === '') throw invalid(occurrence, 'network name/id is not specified');
  return attachment;
}

/** Sets out.networkingConfig when any endpoint has settings. */
export function translateNetworking(flags: Flags, out: TranslatedOptions): void {
  const { config, hostConfig } = out;
  const extraHosts: string[] = [];
  for (const occurrence of flags.all('add-host')) {
    let separator = occurrence.value.indexOf('=');
    if (separator === -1) separator = occurrence.value.indexOf(':');
    const host = separator === -1 ? '' : occurrence.value.slice(0, separator);
    let address = occurrence.value.slice(separator + 1);
    if (host === '' || host.includes(':')) {
      throw invalid(occurrence, `bad format for add-host: ${JSON.stringify(occurrence.value)}`);
    }
    if (address !== 'host-gateway') {
      if (address.length > 2 && address.startsWith('[') && address.endsWith(']')) {
        address = address.slice(1, -1);
      }
      if (canonicalIp(address.trim()) === undefined) {
        throw invalid(occurrence, `invalid IP address in add-host: ${JSON.stringify(address)}`);
      }
    }
    extraHosts.push(`${host}:${address}`);
  }
  if (extraHosts.length > 0) hostConfig.ExtraHosts = extraHosts;
  const dns = flags.all('dns').map((occurrence) => {
    const ip = canonicalIp(occurrence.value.trim());
    if (ip === undefined) {
      throw invalid(occurrence, `IP address is not correctly formatted: ${occurrence.value}`);
    }
    return ip;
  });
  if (dns.length > 0) hostConfig.Dns = dns;
  const dnsOptions = flags.values('dns-option');
  if (dnsOptions.length > 0) hostConfig.DnsOptions = dnsOptions;
  const dnsSearch = flags.all('dns-search').map((o) => parsed(o, validateDnsSearch));
  if (dnsSearch.length > 0) hostConfig.DnsSearch = dnsSearch;
  const links = flags.all('link');
  for (const link of links) {
    const parts = link.value.split(':');
    if (link.value === '' || parts.length > 2) {
      throw invalid(link, `bad format for links: ${link.value} (write name[:alias])`);
    }
  }
  if (links.length > 0) hostConfig.Links = links.map((o) => o.value);

  const mac = flags.last('mac-address');
  if (mac !== undefined && mac.value !== '') {
    if (!isValidMac(mac.value.trim()))
      throw invalid(mac, `${mac.value} is not a valid mac address`);
    config.MacAddress = mac.value;
  }
  const ipv4 = flags.last('ip');
  const ipv6 = flags.last('ip6');
  for (const ip of [ipv4, ipv6]) {
    if (ip !== undefined && ip.value !== '' && canonicalIp(ip.value) === undefined) {
      throw invalid(ip, `invalid string being converted to IP address: ${ip.value}`);
    }
  }
  const aliases = flags.values('network-alias');
  const linkLocal = flags.values('link-local-ip');

  const attachments = flags.all('network').map(parseNetworkAttachment);
  const first = attachments[0];
  hostConfig.NetworkMode = first?.target ?? 'default';
  if (attachments.length === 0 || hostConfig.NetworkMode === 'default') {
    // No --network: the CLI attaches the flags to the "default" network.
    delete hostConfig.NetworkMode;
  }
  const main =
    first ??
    emptyAttachment(
      'default',
      flags.all('network-alias')[0] ??
        flags.all('ip')[0] ?? {
          definition: { name: 'network', takesValue: true, repeatable: true, mapsTo: '' },
          value: 'default',
          written: '--network default',
        },
    );
  const conflict = (what: string): never => {
    throw invalid(main.occurrence, `conflicting options: cannot specify both ${what}`);
  };
  if (main.aliases.length > 0 && aliases.length > 0)
    conflict('--network-alias and per-network alias');
  if (main.ipv4 !== '' && ipv4 !== undefined) conflict('--ip and per-network IPv4 address');
  if (main.ipv6 !== '' && ipv6 !== undefined) conflict('--ip6 and per-network IPv6 address');
  if (main.mac !== '' && mac !== undefined) conflict('--mac-address and per-network MAC address');
  if (main.linkLocalIps.length > 0 && linkLocal.length > 0) {
    conflict('--link-local-ip and per-network link-local IP addresses');
  }
  if (aliases.length > 0) main.aliases = aliases;
  if (isUserDefinedNetwork(main.target) && links.length > 0) main.links = links.map((o) => o.value);
  if (ipv4 !== undefined && ipv4.value !== '') main.ipv4 = ipv4.value;
  if (ipv6 !== undefined && ipv6.value !== '') main.ipv6 = ipv6.value;
  if (main.mac !== '') {
    // API 1.41 has one MAC address per container, in Config.
    if (!isValidMac(main.mac))
      throw invalid(main.occurrence, `${main.mac} is not a valid mac address`);
    config.MacAddress = main.mac;
  }
  if (linkLocal.length > 0) main.linkLocalIps = linkLocal;

  const endpoints: Record<string, EndpointSettings> = {};
  const all = attachments.length === 0 ? [main] : [main, ...attachments.slice(1)];
  let userDefined = false;
  let builtIn = false;
  for (const attachment of all) {
    if (attachment.target.trim() === '')
      throw invalid(attachment.occurrence, 'no name set for network');
    if (isUserDefinedNetwork(attachment.target)) userDefined = true;
    else {
      builtIn = true;
      if (attachment.aliases.length > 0) {
        throw invalid(
          attachment.occurrence,
          'network-scoped aliases are only supported for user-defined networks',
        );
      }
    }
    if (endpoints[attachment.target] !== undefined) {
      throw invalid(
        attachment.occurrence,
        `network ${JSON.stringify(attachment.target)} is specified multiple times`,
      );
    }
    const endpoint: EndpointSettings = {};
    if (attachment.aliases.length > 0) endpoint.Aliases = attachment.aliases;
    if (attachment.driverOpts !== undefined) endpoint.DriverOpts = attachment.driverOpts;
    if (attachment.links.length > 0) endpoint.Links = attachment.links;
    if (attachment.ipv4 !== '' || attachment.ipv6 !== '' || attachment.linkLocalIps.length > 0) {
      endpoint.IPAMConfig = {
        ...(attachment.ipv4 === '' ? {} : { IPv4Address: attachment.ipv4 }),
        ...(attachment.ipv6 === '' ? {} : { IPv6Address: attachment.ipv6 }),
        ...(attachment.linkLocalIps.length === 0 ? {} : { LinkLocalIPs: attachment.linkLocalIps }),
      };
    }
    if (Object.keys(endpoint).length > 0) endpoints[attachment.target] = endpoint;
  }
  if (userDefined && builtIn) {
    throw invalid(
      main.occurrence,
      'conflicting options: cannot attach both user-defined and non-user-defined network-modes',
    );
  }
  if (Object.keys(endpoints).length > 0) out.networkingConfig = { EndpointsConfig: endpoints };
}
