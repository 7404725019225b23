/** The part of kirm/sip.js (`sip` on npm, no bundled types) that the differential test uses. */
declare module 'sip' {
  interface SipJsParams {
    [name: string]: string | null | undefined;
  }
  interface SipJsVia {
    version?: string;
    protocol?: string;
    host?: string;
    port?: number;
    params: SipJsParams;
  }
  interface SipJsAddress {
    name?: string;
    uri: string;
    params: SipJsParams;
  }
  interface SipJsMessage {
    method?: string;
    uri?: string;
    status?: number;
    reason?: string;
    version?: string;
    headers: {
      via?: SipJsVia[];
      from?: SipJsAddress;
      to?: SipJsAddress;
      'call-id'?: string;
      cseq?: { seq: number; method: string };
      'content-length'?: number;
      [name: string]: unknown;
    };
    content?: string;
  }
  /** Parses one message; takes a string or a Buffer (read as 'binary', i.e. latin1). */
  function parse(data: string | Buffer): SipJsMessage | undefined;
  const sip: { parse: typeof parse };
  export default sip;
}
