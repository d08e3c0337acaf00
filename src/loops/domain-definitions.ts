import { isIP } from 'node:net';
import { labelsFromMetadata, NO_LABELS, type VmLabels } from '../core/vm-labels.ts';
import { domainRef } from '../libvirt/client.ts';
import { DomainXmlFlags } from '../libvirt/constants.ts';
import type { LibvirtClient } from '../libvirt/index.ts';

/** The namespace of keizoku's element in a domain's <metadata> (addresses the probe pings). */
export const VM_METADATA_NS = 'urn:keizoku:vm:1';

/** `<kz:address>` values of keizoku's metadata element. */
export function addressesFromMetadata(xml: string | null): string[] {
  if (!xml) return [];
  // IP literals only: a name would make every probe agent resolve (and trust) DNS.
  return [...xml.matchAll(/<(?:[A-Za-z0-9_-]+:)?address>\s*([^<\s]+)\s*</g)]
    .map((m) => m[1]!)
    .filter((a) => isIP(a) !== 0);
}

export interface DefinitionsOptions {
  /** Read a domain's definition again after this long (its metadata may change live). */
  refreshMs: number;
  /** The definition (inactive XML) of each domain read, to keep for a restart elsewhere. */
  onDomainXml?: (vm: string, host: string, xml: string) => Promise<void>;
  /** Wraps each libvirt call (duration metric, slow-call log). */
  timed<T>(host: string, call: string, p: Promise<T>): Promise<T>;
  log: { warn(o: object, msg: string): void };
}

/**
 * What the inventory reads of each domain's definition, by UUID (a move keeps the UUID): the
 * addresses and labels of keizoku's metadata element, and the inactive domain XML handed to
 * `onDomainXml`. Read at once for a domain not seen yet or seen on another host than last
 * time, and again every `refreshMs`. The metadata is part of the host's read (a VM's labels
 * select its policy); the XML, only kept for a restart elsewhere, is read after it, one host's
 * domains after another's in the background (at a cold start of 20,000 VMs it was half the
 * calls, and every one a store write, before any host was up).
 */
type Seen = { at: number; host: string };

export class DomainDefinitions {
  private readonly addresses = new Map<string, string[]>();
  private readonly labels = new Map<string, VmLabels>();
  private readonly readAt = new Map<string, Seen>();
  private readonly xmlAt = new Map<string, Seen>();
  /** Each host's XML reads in progress. */
  private readonly xmlWork = new Map<string, Promise<void>>();

  constructor(private readonly o: DefinitionsOptions) {}

  addressesOf(uuid: string): string[] {
    return this.addresses.get(uuid) ?? [];
  }

  labelsOf(uuid: string): VmLabels {
    return this.labels.get(uuid) ?? NO_LABELS;
  }

  private due(last: Seen | undefined, host: string, now: number): boolean {
    return !last || last.host !== host || now - last.at >= this.o.refreshMs;
  }

  /**
   * Reads the metadata of the domains due, then starts reading their XML (unless the host's
   * XML reads of an earlier call are still going: the next call picks up what is left).
   * `domains` as the host's bulk stats listed them: their handles need no lookup call.
   */
  async read(
    host: string,
    c: LibvirtClient,
    domains: { name: string; uuid: string; id?: number }[],
    now: number,
  ): Promise<void> {
    const xmlDue: { name: string; uuid: string; dom: ReturnType<typeof domainRef> }[] = [];
    const metaDue: { uuid: string; dom: ReturnType<typeof domainRef> }[] = [];
    for (const d of domains) {
      const { name, uuid } = d;
      const dom = domainRef(d);
      if (this.o.onDomainXml && this.due(this.xmlAt.get(uuid), host, now)) xmlDue.push({ name, uuid, dom });
      if (this.due(this.readAt.get(uuid), host, now)) metaDue.push({ uuid, dom });
    }
    // All at once: the calls go out in one write (libvirtd runs a few per client at a time and
    // queues the rest).
    await Promise.all(
      metaDue.map(async ({ uuid, dom }) => {
        try {
          const meta = await this.o.timed(
            host,
            'domain_get_metadata',
            c.getMetadataElement(dom, VM_METADATA_NS),
          );
          this.addresses.set(uuid, addressesFromMetadata(meta));
          this.labels.set(uuid, labelsFromMetadata(meta));
          this.readAt.set(uuid, { at: now, host });
        } catch {
          // Retried on the next pass.
        }
      }),
    );
    if (xmlDue.length && !this.xmlWork.has(host))
      this.xmlWork.set(
        host,
        this.readXml(host, c, xmlDue, now).finally(() => this.xmlWork.delete(host)),
      );
  }

  private async readXml(
    host: string,
    c: LibvirtClient,
    due: { name: string; uuid: string; dom: ReturnType<typeof domainRef> }[],
    now: number,
  ): Promise<void> {
    const onDomainXml = this.o.onDomainXml;
    if (!onDomainXml) return;
    for (const { name, uuid, dom } of due) {
      try {
        const xml = await this.o.timed(host, 'domain_get_xml_desc', c.getXml(dom, DomainXmlFlags.INACTIVE));
        await onDomainXml(name, host, xml).catch((e: Error) =>
          this.o.log.warn({ vm: name, host, err: e.message }, 'storing the domain XML failed'),
        );
        this.xmlAt.set(uuid, { at: now, host });
      } catch {
        // Retried on the next pass (a lost link fails every call left at once).
      }
    }
  }

  /** Resolves once no XML read started by `read` is still going. */
  async idle(): Promise<void> {
    await Promise.all(this.xmlWork.values());
  }

  /** Forgets every domain not in `present` (call after a pass that read every host). */
  retain(present: ReadonlySet<string>): void {
    for (const uuid of [...this.addresses.keys(), ...this.xmlAt.keys()])
      if (!present.has(uuid)) {
        this.addresses.delete(uuid);
        this.labels.delete(uuid);
        this.readAt.delete(uuid);
        this.xmlAt.delete(uuid);
      }
  }
}
