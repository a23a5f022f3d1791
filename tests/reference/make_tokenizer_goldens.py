#!/usr/bin/python3
"""Writes the tokenizer goldens in tests/data/ with Debian's python3-sentencepiece (run as /usr/bin/python3).

tokenizer-llama-{encode,decode}.tsv   the LLaMA-2 tokenizer.model from ../shared/data
tokenizer-tiny.model                  a small BPE model trained here: user-defined and control pieces, UNUSED
                                      pieces (patched in), no byte fallback, a custom unk surface
tokenizer-tiny-{encode,decode}.tsv    its goldens with the model's normalizer (extra whitespace removed)
tokenizer-tiny-raw-{encode,decode}.tsv  the same model with add_dummy_prefix and remove_extra_whitespaces off

Line formats: encode "TEXT<TAB>IDS", decode "IDS<TAB>TEXT"; IDS space separated, encode ids with BOS as
OneLLM's tokenizer prepends it. TEXT is UTF-8 with \\\\, \\n, \\t, \\r and \\xHH (other control bytes and bytes
that are not UTF-8) escaped. Everything is seeded: running the script again gives the same files.
"""
import io
import os
import random
import sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, '..', 'data')
LLAMA = os.path.join(HERE, '..', '..', '..', 'shared', 'data', 'llama2-tokenizer.model')


def escape(b):
    out = []
    for ch in b.decode('utf-8', errors='surrogateescape'):
        c = ord(ch)
        if ch == '\\':
            out.append('\\\\')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\t':
            out.append('\\t')
        elif ch == '\r':
            out.append('\\r')
        elif c < 0x20 or c == 0x7f:
            out.append('\\x%02X' % c)
        elif 0xdc80 <= c <= 0xdcff:   # a byte that is not UTF-8
            out.append('\\x%02X' % (c - 0xdc00))
        else:
            out.append(ch)
    return ''.join(out)


def as_bytes(t):
    return t if isinstance(t, bytes) else t.encode('utf-8')


def write_encode(path, sp, texts):
    seen = set()
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        for t in texts:
            b = as_bytes(t)
            if b in seen:
                continue
            seen.add(b)
            ids = [sp.bos_id()] + sp.encode(b)
            f.write('%s\t%s\n' % (escape(b), ' '.join(map(str, ids))))


def write_decode(path, sp, seqs):
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        for ids in seqs:
            f.write('%s\t%s\n' % (' '.join(map(str, ids)), escape(sp.decode(ids).encode('utf-8'))))


# ---- inputs ----

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")


def prompt(turns):
    s = SYSTEM + '\n\n###'
    for q, a in turns:
        s += 'Human: ' + q + '\n###'
        s += ('Assistant: ' + a + '\n###') if a else 'Assistant:'
    return s


QUESTIONS = [
    'Provide a one-sentence caption for the provided image.',
    'Provide a one-sentence caption for the provided audio.',
    'Provide a one-sentence caption for the provided fMRI data.',
    'Describe the scene.', 'Describe the motion.', 'What is this?',
    'What is the man doing?\nAnswer the question using a single word or phrase.',
    'Which color is the car? (A) red (B) blue Answer with the option\'s letter from the given choices directly',
    'Provide a short description for this region.', 'Describe the scene based on fMRI data.',
]

PROSE = [
    'The quick brown fox jumps over the lazy dog.',
    'A colour test pattern with vertical bars, shown on an old television set in a dark room.',
    'Two people are walking a dog along the beach at sunset, while waves roll in behind them.',
    'A man in a red jacket is riding a bicycle down a busy city street.',
    "It's 5 o'clock somewhere; don't you think? \"Quoted\" text, (parentheses) and [brackets] {braces}.",
    'Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Äpfel.',
    'Le cœur a ses raisons que la raison ne connaît point. À bientôt, garçon!',
    'El niño comió una manzana en el año 2023. ¿Qué tal? ¡Muy bien!',
    'Быстрая коричневая лиса прыгает через ленивую собаку.',
    'Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.',
    'דוגמה לטקסט בעברית', 'مثال على النص العربي', 'हिन्दी में एक वाक्य', 'ภาษาไทยง่ายนิดเดียว',
    '我们在图像中看到一只猫坐在窗台上。', '吾輩は猫である。名前はまだ無い。', '한국어 문장을 토큰화합니다.',
    'Tiếng Việt có dấu: người, được, những.', 'Ænd þe wyrd ȝe ſaw', 'ﬁ ﬂ ﬀ ligatures and ｆｕｌｌｗｉｄｔｈ',
    'def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n',
    '{"key": [1, 2.5, -3e10], "nested": {"a": null, "b": true}}',
    'https://github.com/csuhan/OneLLM/blob/main/model/meta.py?x=1&y=2#L10',
    'user@example.com, +1 (555) 123-4567, 192.168.0.1:8080',
    '<s> </s> <unk> <0x41> <0x0A> ▁ ▁▁ ▁a a▁ <pad>',
    '### Human: hello\n### Assistant: hi\n###', '###Human:###Assistant:######',
    '1 + 1 = 2; 3 × 4 = 12; √16 = 4; ∑ ∫ ∂ ≤ ≥ ≠ ∞ π',
    '$100.00 €50 £20 ¥1000 ₹500 ₿0.001',
]

SPECIAL = [
    '', ' ', '  ', '   ', '\n', '\t', '\r\n', ' \n ', 'a', 'A', 'Hello', 'Hello world', 'hello  world',
    '  leading', 'trailing  ', ' both ', 'multiple   spaces   here', 'tabs\tand\ttabs', 'line1\nline2\r\nline3',
    '0', '7', '42', '123', '2023', '3.14159', '1,000,000', '2024-01-01T12:00:00Z', '0x1F', '1e-5', '-273.15',
    'ÀÉÎÕÜ', 'e\u0301', 'n\u0303', '\u00e9', 'Å', '\u212b',
    '🎥', '🎤🎧', '👩\u200d👩\u200d👧\u200d👦', '🇩🇪🇫🇷', '👍🏽', '❤️', '©®™', '\U0001F600 smile', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
    '\x00', 'a\x00b', '\x01\x02\x1f\x7f', '\x1b[31mred\x1b[0m', '\u2581', '\u2581\u2581 x', '\ufffd', '\ufeffBOM',
    '\u200b zero width', '\u00a0nbsp\u00a0', '\u3000ideographic space', '\u2028\u2029', '\U0010FFFF', '\uE000',
    '!!!???...', '----', '====', '____', '***', '...', '…', '—', '«»', '„“', '¿¡',
    'a' * 1000, 'ab' * 500, 'supercalifragilisticexpialidocious' * 20, '1234567890' * 50, 'あ' * 300,
    '🎥' * 100, ' ' * 100, '\n' * 50, 'x' + ' ' * 64 + 'y',
]
SPECIAL += [' ' * n + 'w' for n in range(1, 12)] + ['w' + ' ' * n for n in range(1, 12)]
SPECIAL += ['\n' * n + 'w' for n in range(1, 6)] + ['\t' * n for n in range(1, 6)]

INVALID = [
    b'\xff', b'\xfe\xff', b'\x80', b'a\x80b', b'\xc3', b'\xc3(', b'\xe6\x97', b'\xe6\x97\xa5\xe6',
    b'\xf0\x9f\x8e', b'\xed\xa0\x80', b'\xc0\xaf', b'\xe0\x80\xaf', b'\xf4\x90\x80\x80', b'\xf8\x88\x80\x80\x80',
    b'ok \xff\xfe done', b'\xef\xbf\xbd', b'caf\xe9', b' \xa0 ',
]


def random_texts(r):
    out = []
    ascii_letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
    pools = [
        ascii_letters + '      ',
        ascii_letters + '0123456789 .,;:!?\'"()-\n\t',
        'aeiou' + 'ÄÖÜäöüßéèêàç' + '  ',
        ''.join(chr(c) for c in range(0x4e00, 0x4e80)) + '，。 ',
        ''.join(chr(c) for c in range(0x0400, 0x0450)) + ' ',
        ''.join(chr(c) for c in range(0x1f300, 0x1f340)) + ' ab',
        ' \t\n\r\u2581#',
    ]
    for _ in range(150):
        pool = r.choice(pools)
        out.append(''.join(r.choice(pool) for _ in range(r.randrange(1, 60))))
    for _ in range(60):   # any code point but surrogates
        s = []
        for _ in range(r.randrange(1, 20)):
            c = r.randrange(0x110000)
            if 0xd800 <= c < 0xe000:
                c = 0x20
            s.append(chr(c))
        out.append(''.join(s))
    for _ in range(40):   # arbitrary bytes
        out.append(bytes(r.randrange(256) for _ in range(r.randrange(1, 24))))
    return out


def words_text(r, words, n):
    return ' '.join(r.choice(words) for _ in range(n))


def random_id_seqs(r, sp, n_vocab):
    byte0 = sp.piece_to_id('<0x00>')
    seqs = []
    for _ in range(80):   # anything in the vocabulary
        seqs.append([r.randrange(n_vocab) for _ in range(r.randrange(1, 16))])
    for _ in range(80):   # byte pieces, mostly broken UTF-8, between normal pieces
        seq = []
        for _ in range(r.randrange(1, 12)):
            k = r.random()
            if k < 0.5:
                seq.append(byte0 + r.randrange(0x80, 0x100))
            elif k < 0.7:
                seq.append(byte0 + r.randrange(0x80))
            else:
                seq.append(r.randrange(n_vocab))
        seqs.append(seq)
    for _ in range(60):   # valid multibyte characters as bytes, cut at random places
        text = ''.join(chr(r.choice([0xe9, 0x65e5, 0x1f3a5, 0x10348, 0x800, 0xffff])) for _ in range(4))
        b = list(text.encode('utf-8'))
        lo, hi = sorted(r.randrange(len(b) + 1) for _ in range(2))
        seqs.append([byte0 + x for x in b[lo:hi]] + r.choice([[], [29871], [1], [2], [0]]))
    for _ in range(40):   # the leading-space rule: BOS, EOS, unk, spaces and bytes at the start
        head = [r.choice([sp.bos_id(), sp.eos_id(), sp.unk_id(), sp.piece_to_id('▁'), byte0 + 0x20, byte0 + 0xe6])
                for _ in range(r.randrange(0, 4))]
        seqs.append(head + sp.encode(r.choice([' a', 'b c', '  d', 'x'])))
    return seqs


def train_tiny(r):
    words = ('the quick brown fox jumps over a lazy dog and cat with colour pattern bars video audio image '
             'caption human assistant hello world one two three 123 4567').split()
    lines = [words_text(r, words, 12) for _ in range(3000)]
    f = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=f, model_type='bpe',
                                   vocab_size=240, user_defined_symbols=['<sep>', '##', 'ab'],
                                   control_symbols=['<ctl>'], normalization_rule_name='identity',
                                   unk_surface='<?>', num_threads=1, minloglevel=2)
    return f.getvalue(), words


# A protobuf editor just big enough to mark pieces UNUSED and to change normalizer flags.

def varint(b, i):
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7f) << shift
        shift += 7
        if not x & 0x80:
            return v, i


def put_varint(v):
    out = bytearray()
    while True:
        x = v & 0x7f
        v >>= 7
        out.append(x | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fields(b):
    i = 0
    while i < len(b):
        key, j = varint(b, i)
        wire = key & 7
        if wire == 0:
            _, k = varint(b, j)
            val = b[j:k]
        elif wire == 2:
            n, k = varint(b, j)
            val = b[k:k + n]
            k += n
        elif wire == 5:
            k = j + 4
            val = b[j:k]
        else:
            raise ValueError('wire type %d' % wire)
        yield key >> 3, wire, val, b[i:k]
        i = k


def message_field(field, payload):
    return put_varint(field << 3 | 2) + put_varint(len(payload)) + payload


def patch(model, unused=(), normalizer=None):
    out = bytearray()
    index = 0
    for field, wire, val, raw in fields(model):
        if field == 1:
            if index in unused:
                body = b''.join(r for f, _, _, r in fields(val) if f != 3) + put_varint(3 << 3) + put_varint(5)
                raw = message_field(1, body)
            index += 1
        elif field == 3 and normalizer is not None:
            body = b''.join(r for f, _, _, r in fields(val) if f not in normalizer)
            for f, v in sorted(normalizer.items()):
                body += put_varint(f << 3) + put_varint(int(v))
            raw = message_field(3, body)
        out += raw
    return bytes(out)


def main():
    if not os.path.exists(LLAMA):
        sys.exit('missing %s' % LLAMA)
    r = random.Random(20240501)
    sp = spm.SentencePieceProcessor(model_file=LLAMA)

    texts = [prompt([(q, None)]) for q in QUESTIONS]
    texts += [prompt([(QUESTIONS[0], 'A cat sitting on a window sill.'), ('What color is it?', None)]),
              prompt([('Hi', 'Hello! How can I help?'), ('Describe the scene.', 'A busy street.'),
                      ('Is it raining?', None)]),
              'A cat sitting on a window sill.\n###Human: next', ' The answer is 42.###']
    texts += SPECIAL + PROSE + INVALID + random_texts(r)
    words = [w.strip('.,;:!?"()') for p in PROSE[:5] for w in p.split()]
    texts += [words_text(r, words, r.randrange(50, 400)) for _ in range(5)]
    write_encode(os.path.join(DATA, 'tokenizer-llama-encode.tsv'), sp, texts)
    write_decode(os.path.join(DATA, 'tokenizer-llama-decode.tsv'), sp, random_id_seqs(r, sp, sp.vocab_size()))

    trained, tiny_words = train_tiny(r)
    base = spm.SentencePieceProcessor(model_proto=trained)
    # merges of two normal pieces, so that sentencepiece has to split them again
    merged = [i for i in range(base.vocab_size())
              if not (base.is_control(i) or base.is_unknown(i)) and len(base.id_to_piece(i)) >= 3
              and base.id_to_piece(i) not in ('<sep>', '##', 'ab')]
    unused = set(merged[5:200:15])
    tiny = patch(trained, unused=unused)
    with open(os.path.join(DATA, 'tokenizer-tiny.model'), 'wb') as f:
        f.write(tiny)
    sp_tiny = spm.SentencePieceProcessor(model_proto=tiny)
    assert all(sp_tiny.is_unused(i) for i in unused)
    tiny_texts = SPECIAL[:40] + PROSE[:6] + INVALID[:6] + ['<sep>ab##<sep>', 'a<sep>b', 'abab ab  ##x', 'Z!? Zz']
    tiny_texts += [words_text(r, tiny_words + ['<sep>', '##', 'xyz', 'ab', '   ', 'Q!'], r.randrange(1, 30))
                   for _ in range(150)]
    write_encode(os.path.join(DATA, 'tokenizer-tiny-encode.tsv'), sp_tiny, tiny_texts)
    seqs = [[r.randrange(sp_tiny.vocab_size()) for _ in range(r.randrange(1, 12))] for _ in range(150)]
    write_decode(os.path.join(DATA, 'tokenizer-tiny-decode.tsv'), sp_tiny, seqs)
    raw = spm.SentencePieceProcessor(model_proto=patch(tiny, normalizer={3: False, 4: False}))
    write_encode(os.path.join(DATA, 'tokenizer-tiny-raw-encode.tsv'), raw, tiny_texts)
    write_decode(os.path.join(DATA, 'tokenizer-tiny-raw-decode.tsv'), raw, seqs)


if __name__ == '__main__':
    main()
