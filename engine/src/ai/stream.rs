//! Stream translation: the one interface the handler drives, whatever the
//! provider's wire and the client's.
//!
//! The handler feeds each read of the provider's body as it comes and
//! writes what the translator appends; nothing is gathered, so the first
//! token reaches the client as soon as its event is whole. The
//! translators are an enum rather than `Box<dyn Events>`: the common paths
//! (passthrough, one translation) cost no allocation and no indirect call;
//! only the Anthropic front, which chains two translations through a
//! buffer, boxes its pair.

use bytes::BytesMut;

use super::{anthropic, gemini, openai, Usage};

/// What every stream translator does; implemented by
/// `openai::PassStream`, `anthropic::ToOpenAi`, `anthropic::FromOpenAi`
/// and `gemini::ToOpenAi`.
pub(crate) trait Events {
    /// Translates the next bytes of the upstream stream (any split:
    /// mid-event, mid-UTF-8), appending what the client gets to `out`.
    fn feed(&mut self, data: &[u8], out: &mut BytesMut);
    /// The upstream stream ended (cleanly or not): appends what the client
    /// still needs (`[DONE]`, `message_stop`...). Called once.
    fn finish(&mut self, out: &mut BytesMut);
    /// Usage known so far.
    fn usage(&self) -> Usage;
    /// Whether content (a token of text or a tool call) has been written
    /// yet.
    fn started(&self) -> bool;
}

/// The translator a response needs.
pub(crate) enum Translator {
    /// OpenAI provider → OpenAI client.
    Pass(openai::PassStream),
    /// Anthropic provider → OpenAI client.
    Anthropic(anthropic::ToOpenAi),
    /// Gemini provider → OpenAI client.
    Gemini(gemini::ToOpenAi),
    /// The Anthropic front: the provider's stream made OpenAI (the inner
    /// translator, which must include usage so the outer one can report
    /// it), then Anthropic; the buffer carries the OpenAI bytes between
    /// them and is reused.
    Messages(Box<(Translator, anthropic::FromOpenAi, BytesMut)>),
}

impl Events for Translator {
    fn feed(&mut self, data: &[u8], out: &mut BytesMut) {
        match self {
            Translator::Pass(t) => t.feed(data, out),
            Translator::Anthropic(t) => t.feed(data, out),
            Translator::Gemini(t) => t.feed(data, out),
            Translator::Messages(chain) => {
                let (inner, outer, buf) = &mut **chain;
                inner.feed(data, buf);
                if !buf.is_empty() {
                    outer.feed(buf, out);
                    buf.clear();
                }
            }
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        match self {
            Translator::Pass(t) => t.finish(out),
            Translator::Anthropic(t) => t.finish(out),
            Translator::Gemini(t) => t.finish(out),
            Translator::Messages(chain) => {
                let (inner, outer, buf) = &mut **chain;
                inner.finish(buf);
                outer.feed(buf, out);
                buf.clear();
                outer.finish(out);
            }
        }
    }

    fn usage(&self) -> Usage {
        match self {
            Translator::Pass(t) => t.usage(),
            Translator::Anthropic(t) => t.usage(),
            Translator::Gemini(t) => t.usage(),
            // The provider's own count, read before any translation.
            Translator::Messages(chain) => chain.0.usage(),
        }
    }

    fn started(&self) -> bool {
        match self {
            Translator::Pass(t) => t.started(),
            Translator::Anthropic(t) => t.started(),
            Translator::Gemini(t) => t.started(),
            Translator::Messages(chain) => chain.0.started(),
        }
    }
}

/// Test helpers for every translator's tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Feeds `input` whole and in every piece size 1..=7; all outputs must
    /// be equal. Returns the output, the usage and `started`.
    pub(crate) fn run(make: &dyn Fn() -> Box<dyn Events>, input: &[u8]) -> (String, Usage, bool) {
        let mut results = Vec::new();
        for size in [input.len().max(1), 1, 2, 3, 4, 5, 6, 7] {
            let mut t = make();
            let mut out = BytesMut::new();
            for piece in input.chunks(size) {
                t.feed(piece, &mut out);
            }
            t.finish(&mut out);
            let out = String::from_utf8(out.to_vec()).expect("translators write UTF-8");
            results.push((out, t.usage(), t.started()));
        }
        for (i, r) in results.iter().enumerate().skip(1) {
            assert_eq!(r, &results[0], "output fed in pieces of {i} differs");
        }
        results.swap_remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut t: Translator, input: &[u8], piece: usize) -> (Vec<u8>, Usage, bool) {
        let mut out = BytesMut::new();
        for p in input.chunks(piece.max(1)) {
            t.feed(p, &mut out);
        }
        t.finish(&mut out);
        (out.to_vec(), t.usage(), t.started())
    }

    #[test]
    fn the_enum_delegates() {
        let openai = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        let gemini = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1,\"totalTokenCount\":4},\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"r1\"}\n\n";
        let want = Usage {
            input: 3,
            output: 1,
            cached: 0,
            reasoning: 0,
        };
        for piece in 1..=7 {
            let whole = run(
                Translator::Pass(openai::PassStream::new(true)),
                openai,
                openai.len(),
            );
            let split = run(
                Translator::Pass(openai::PassStream::new(true)),
                openai,
                piece,
            );
            assert_eq!(whole, split);
            assert_eq!(whole.0, openai.to_vec());
            assert_eq!((whole.1, whole.2), (want, true));

            let make = || Translator::Gemini(gemini::ToOpenAi::new("gemini-2.0-flash", true, 7));
            let whole = run(make(), gemini, gemini.len());
            assert_eq!(whole, run(make(), gemini, piece));
            assert_eq!((whole.1, whole.2), (want, true));
            assert!(whole.0.ends_with(b"data: [DONE]\n\n"));
        }
    }
}
