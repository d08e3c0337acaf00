import { createServer } from 'node:net';
import type { LabState } from './state.ts';

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A keizokud config for a lab: its sites and hosts (over TLS with the lab's CA, or over the
 * lab's plain TCP marked insecure), Redis and the metrics port. `extra` adds top-level
 * sections; its `libvirt` is merged with the TLS material.
 */
export function labKeizokudConfig(
  lab: LabState,
  o: {
    redisUrl: string;
    metricsPort: number;
    apiPort?: number;
    tls?: boolean;
    extra?: Record<string, unknown>;
  },
): Record<string, unknown> {
  const pki = lab.pki!;
  const { libvirt, ...extra } = (o.extra ?? {}) as { libvirt?: Record<string, unknown> };
  const tls = o.tls
    ? { tls: { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile } }
    : {};
  return {
    sites: lab.layout.sites.map((s) => ({ name: s.name })),
    hosts: lab.layout.hosts.map((h) =>
      o.tls
        ? // keizokud over TLS; the hosts reach each other over the lab's plain TCP for migrations.
          {
            name: h.name,
            uri: h.tlsUri,
            migrationUri: h.uri,
            insecure: true,
            site: h.site,
            managementAddress: h.mgmtAddress,
            fence: { method: 'lab', labId: lab.id },
          }
        : {
            name: h.name,
            uri: h.uri,
            insecure: true,
            site: h.site,
            managementAddress: h.mgmtAddress,
            fence: { method: 'lab', labId: lab.id },
          },
    ),
    libvirt: { ...tls, ...libvirt },
    redis: { url: o.redisUrl },
    metrics: { listen: `127.0.0.1:${o.metricsPort}` },
    ...(o.apiPort !== undefined ? { api: { listen: `127.0.0.1:${o.apiPort}` } } : {}),
    ...extra,
  };
}
