#!/usr/bin/env python3
"""tools/make_chat_fixtures.py: HF transformers' own renderings of the chat templates minfer implements
(engine/core/chat_template.cpp), as byte-exact parity fixtures.

Templates (tests/fixtures/chat/templates/; provenance in tests/fixtures/chat/README.md):
  smollm2.jinja   written here: `tokenizer.chat_template` read from the SmolLM2-135M-Instruct GGUF (--gguf)
  chatml.jinja    written here: plain ChatML (SmolLM2's template without its default-system branch)
  chatml_multiline.jinja  written here: the same template spread over lines with whitespace control, m.role
                  spelling and "..." quotes (minfer must recognise it as plain ChatML and render it the same)
  qwen3.jinja     checked in (Qwen/Qwen3-0.6B's template); read only, sha256 checked
  llama3.jinja    checked in (meta-llama/Llama-3.1-8B-Instruct's template); read only, sha256 checked
  llama3_2.jinja  checked in (meta-llama/Llama-3.2-3B-Instruct's template); read only, sha256 checked
  qwen2_5.jinja, qwq.jinja  checked in, rendered by nothing: minfer must refuse them (the test checks that)

Every template is rendered with transformers' renderer (transformers.utils.chat_template_utils.
render_jinja_template: the sandboxed jinja2 environment with trim_blocks/lstrip_blocks that
tokenizer.apply_chat_template uses), passing the special tokens the model's tokenizer passes
(bos_token, eos_token), for each message list in MESSAGE_SETS, with and without the generation prompt, and
with the per-template options in OPTIONS (Qwen3: enable_thinking False; Llama-3: an explicit date_string).
For SmolLM2 the rendering is also checked against tokenizer.apply_chat_template of the tokenizer that
transformers loads from the GGUF itself (skipped with a note if that fails).

Output: OUT/expected.json, a list of {template, messages, add_generation_prompt, options, rendered}; `options`
holds exactly the extra keyword arguments passed to the template ({} = the template's defaults).
Llama-3.2's template defaults its date to today (strftime_now), so it is rendered only with date_string set.

Usage: python3 tools/make_chat_fixtures.py [--gguf models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf]
       [--out tests/fixtures/chat]
Needs transformers (5.x), jinja2, gguf (pip); no network.
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import sys

import gguf
import jinja2
import transformers
from transformers.utils.chat_template_utils import render_jinja_template

# sha256 of the checked-in template files, as copied from llama.cpp's models/templates/ (see README.md).
CHECKED_IN = {
    "qwen3.jinja": "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5",
    "llama3.jinja": "e10ca381b1ccc5cf9db52e371f3b6651576caee0a630b452e2816b2d404d4b65",
    "llama3_2.jinja": "5816fce10444e03c2e9ee1ef8a4a1ea61ae7e69e438613f3b17b69d0426223a4",
    "qwen2_5.jinja": "cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f",
    "qwq.jinja": "16488ad69d85833e5f66c50174f39834b688343337e9337f018deaa21b354117",
}

# The canonical ChatML template: one <|im_start|>ROLE\nCONTENT<|im_end|>\n block per message, no default system.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'"
    " + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# The same, laid out over several lines the way longer templates are written; renders identically.
CHATML_MULTILINE = """{#- plain ChatML, laid out over lines -#}
{%- for message in messages %}
    {{- "<|im_start|>" + message.role + "\\n" + message.content + "<|im_end|>\\n" }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# template name -> (special tokens its tokenizer passes to the template, option sets to render with)
TEMPLATES = {
    "smollm2": ({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}, [{}]),
    "chatml": ({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}, [{}]),
    "chatml_multiline": ({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}, [{}]),
    "qwen3": ({"eos_token": "<|im_end|>"},
              [{}, {"enable_thinking": False}, {"enable_thinking": True}]),
    "llama3": ({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, [{}, {"date_string": "01 Jan 2025"}]),
    "llama3_2": ({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
                 [{"date_string": "26 Jul 2024"}, {"date_string": "05 Mar 2026"}]),
}


def msg(role, content):
    return {"role": role, "content": content}


MESSAGE_SETS = [
    [msg("system", "You are a concise assistant."), msg("user", "What is the capital of France?")],
    [msg("user", "Hello!")],
    [msg("user", "Hi, who are you?"), msg("assistant", "I am a small language model."),
     msg("user", "Can you count to three?")],
    [msg("system", "Answer in French."), msg("user", "Good morning"), msg("assistant", "Bonjour"),
     msg("user", "Thank you")],
    # ends with an assistant turn (Qwen3 wraps the last assistant message in an empty think block)
    [msg("user", "Say yes."), msg("assistant", "Yes.")],
    # an earlier assistant turn with reasoning, which Qwen3's template strips
    [msg("user", "What is 2+2?"), msg("assistant", "<think>\nSimple arithmetic: 2+2=4.\n</think>\n\nIt is 4."),
     msg("user", "And 3+3?")],
    # reasoning in the last assistant turn (kept by Qwen3), with odd spacing and a second </think>
    [msg("user", "Think first."),
     msg("assistant", "<think>\n\nstep one\nstep two\n\n</think>\n\n\nDone.</think> tail")],
    # no opening <think>, and a user turn that is a tool response (not a query for Qwen3)
    [msg("user", "Look it up."), msg("assistant", "checked the table</think>\nThe answer is 7."),
     msg("user", "<tool_response>\n7\n</tool_response>")],
    # surrounding whitespace (Llama-3 trims it, Unicode spaces included), inner newlines, non-ASCII text
    [msg("system", "  \n Be brief.\t\n"), msg("user", "\u00a0 Quelle est la m\u00e9t\u00e9o ? \u3000\n"),
     msg("assistant", "\n Il fait beau. \u2003"), msg("user", "Merci\n\nbeaucoup \U0001F600 ")],
    # an empty system message, a system message after the first turn, an empty user message
    [msg("system", ""), msg("user", "One"), msg("system", "Switch to formal mode."), msg("user", "")],
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_gguf_template(path):
    reader = gguf.GGUFReader(path)
    field = reader.fields.get("tokenizer.chat_template")
    if field is None:
        sys.exit(f"make_chat_fixtures.py: {path}: no tokenizer.chat_template key")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def render(template, messages, add_generation_prompt, special, options):
    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template,
                                        add_generation_prompt=add_generation_prompt, **special, **options)
    return rendered[0]


def check_smollm2_tokenizer(gguf_path, cases):
    """Cross-check render_jinja_template against the GGUF tokenizer's own apply_chat_template."""
    try:
        tok = transformers.AutoTokenizer.from_pretrained(os.path.dirname(gguf_path),
                                                         gguf_file=os.path.basename(gguf_path))
    except Exception as e:  # noqa: BLE001 - only a cross-check; say why it was skipped
        print(f"note: SmolLM2 tokenizer cross-check skipped ({type(e).__name__}: {e})")
        return
    for c in cases:
        got = tok.apply_chat_template(c["messages"], tokenize=False,
                                      add_generation_prompt=c["add_generation_prompt"])
        if got != c["rendered"]:
            sys.exit("make_chat_fixtures.py: SmolLM2 apply_chat_template differs from render_jinja_template for "
                     + json.dumps(c["messages"]))
    print(f"SmolLM2: apply_chat_template of the GGUF tokenizer agrees on all {len(cases)} cases")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", default="models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    help="SmolLM2-135M-Instruct GGUF holding tokenizer.chat_template (default %(default)s)")
    ap.add_argument("--out", default="tests/fixtures/chat", help="output folder (default %(default)s)")
    a = ap.parse_args()
    tdir = os.path.join(a.out, "templates")
    os.makedirs(tdir, exist_ok=True)
    if not os.path.isfile(a.gguf):
        sys.exit(f"make_chat_fixtures.py: {a.gguf}: no such file (run scripts/fetch_smollm2.sh)")
    for name, digest in CHECKED_IN.items():
        path = os.path.join(tdir, name)
        if not os.path.isfile(path):
            sys.exit(f"make_chat_fixtures.py: {path}: missing (copy it as tests/fixtures/chat/README.md says)")
        if sha256(path) != digest:
            sys.exit(f"make_chat_fixtures.py: {path}: sha256 {sha256(path)} is not the recorded {digest}")

    with open(os.path.join(tdir, "smollm2.jinja"), "w", encoding="utf-8", newline="") as f:
        f.write(read_gguf_template(a.gguf))
    with open(os.path.join(tdir, "chatml.jinja"), "w", encoding="utf-8", newline="") as f:
        f.write(CHATML)
    with open(os.path.join(tdir, "chatml_multiline.jinja"), "w", encoding="utf-8", newline="") as f:
        f.write(CHATML_MULTILINE)

    cases = []
    for name, (special, option_sets) in TEMPLATES.items():
        with open(os.path.join(tdir, name + ".jinja"), encoding="utf-8", newline="") as f:
            template = f.read()
        for options in option_sets:
            for messages in MESSAGE_SETS:
                for gen in (True, False):
                    cases.append({"template": name, "messages": messages, "add_generation_prompt": gen,
                                  "options": options, "rendered": render(template, messages, gen, special, options)})

    check_smollm2_tokenizer(a.gguf, [c for c in cases if c["template"] == "smollm2"])
    out = os.path.join(a.out, "expected.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(cases, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(f"wrote {out}: {len(cases)} cases (transformers {transformers.__version__}, jinja2 {jinja2.__version__},"
          f" gguf {importlib.metadata.version('gguf')})")


if __name__ == "__main__":
    main()
