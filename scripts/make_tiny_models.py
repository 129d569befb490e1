"""Build tiny Phi-3-shaped test models for the offline tests, in about 30 s on 2 CPU cores.

    python scripts/make_tiny_models.py OUTDIR [--seed 0] [--quiet]

Writes:
    OUTDIR/base/         a 1.3M-parameter Phi3ForCausalLM and its byte-level BPE tokenizer
    OUTDIR/adapter/      a peft LoRA that makes the base tell robot stories (+ the tokenizer)
    OUTDIR/config.yaml   an app config that uses them (paths relative to OUTDIR)

The base is trained on a small hand-written set of children's stories, in Phi-3's chat format,
until greedy decoding reproduces clean sentences and stops at <|end|>. It memorises more than it
invents: that is what tests need (real punctuation, quotes, a stop token), not quality.
Recipe and measurements: /work/shared/recipes.md, "Tiny Phi-3 + tokenizer + LoRA for offline tests".
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from pathlib import Path

# A local path that does not exist would otherwise be retried against huggingface.co for ~45 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# peft warns on every get_peft_model / from_pretrained that `is_gradient_checkpointing` is
# deprecated; it is harmless and not ours to fix.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

# Training lengths, in steps (the box's speed varies, so never in seconds). On held-out prompts
# (4 seeds x 24 system+user prompts), greedy replies that stop cleanly rose from 77% of the base's
# and 88% of the adapter's at 70 base steps to 92% and 98% at 90.
BASE_STEPS, BASE_LR = 90, 3e-3
# LoRA lr 1e-2: 5e-3 left the adapter's replies garbled after 60 steps, 1.5e-2 was worse again.
LORA_STEPS, LORA_LR = 60, 1e-2

SPECIALS = ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<unk>"]

# Phi-3's chat template, with the system role accepted (the app sends a system prompt).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] in ['system', 'user', 'assistant'] %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

CONFIG_YAML = """\
# Tiny offline test models made by scripts/make_tiny_models.py: a 1.3M-parameter Phi-3 and a LoRA.
llm:
  backend: local
  model: custom
  adapter: adapter        # base_model is read from adapter/adapter_config.json
  device: cpu
  dtype: float32
  max_new_tokens: 120
  temperature: 0.0        # greedy: the tiny model's sampled text is noisy
  repetition_penalty: 1.0
story:
  age_group: Early Elementary
  language: en
  intent: patterns  # the meaning router loads the encoder too; tests/test_intent.py turns it on where it is tested
privacy:
  keep_transcripts: true  # a development config: the tests read what was heard from the events file
safety:
  meaning: "off"  # it loads the encoder (Gemma 3 270M) at every start; tests/test_meaning.py turns it on where it is tested
"""

# The base model's stories. No robots here: the tests tell base from adapter by that word.
STORIES = [
    'Little Fox lived at the edge of the forest. One morning she found a blue feather. "Is this yours?" she asked the jay. "Yes!" said the jay. "Thank you, Fox." Little Fox smiled all day.',
    'The moon was round and bright. Owl sat on a high branch and looked up. "Moon, are you lonely?" he asked. The moon did not answer, but it shone a little brighter, and Owl was not lonely either.',
    'Bear woke up from his long winter sleep. He was very hungry. "Where are the berries?" he asked. "Not yet," said Rabbit. "First comes the rain, then the flowers, then the berries." Bear laughed and waited.',
    'A small mouse found a big red apple. "I cannot carry it alone," she said. So she asked her friends, the beetle and the snail. Together they rolled the apple home, and everyone had a sweet, crunchy supper.',
    'Turtle walked slowly to the pond. "You are late!" said Frog. "I am not late," said Turtle. "I am just on time for me." Frog thought about it, and then they both sat in the warm sun.',
    'The little rabbit could not sleep. "Mama, the night is so dark," he said. His mother pointed at the sky. "Look, the stars are little lamps," she said. The rabbit counted the stars, one, two, three, and fell asleep.',
    'Squirrel hid a nut under an oak tree. In the spring, a tiny green leaf came up where the nut had been. "Oh!" said Squirrel. "My nut is growing into a tree!" She watered it every day.',
    'The fox and the hedgehog were best friends. When it rained, the fox held a big leaf over the hedgehog. When it was cold, the hedgehog shared his warm nest. "That is what friends do," said the fox.',
    'A little duck wanted to see the sea. She swam down the river, past the mill and the bridge. At last she saw the waves. "It is so big!" she said. Then she swam home to tell her brothers.',
    'Owl and Mouse were afraid of each other. One night, a storm broke a branch, and Mouse helped Owl find a new home. "You are kind," said Owl. "So are you," said Mouse. After that, they were friends.',
    'The moon came down to the lake to take a bath. The frogs sang a song for her. "Thank you, frogs," said the moon. When morning came, she climbed back into the sky, clean and shining.',
    'Baby Bear lost his red hat in the snow. He looked under the tree and behind the rock. "Here it is!" called a little bird. The hat was on a branch. Baby Bear said, "Thank you, bird!"',
    'Deer walked into the meadow at dawn. The grass was wet and the air was cool. "Good morning, sun," she said. The sun rose over the hills, and all the flowers opened their eyes.',
    'The kitten chased a yellow butterfly. It flew over the fence, so the kitten climbed the fence. It flew over the pond, so the kitten sat down. "You win today," she said, and she washed her paws.',
    'Grandpa Badger told stories by the fire. "Tell us about the big snow!" said the little badgers. So he told them about the winter when the snow was as tall as a tree, and they all listened, warm and happy.',
    'A little cloud wanted to be useful. "What can I do?" it asked the wind. "Go to the garden," said the wind. The cloud rained softly on the thirsty flowers, and the flowers said, "Thank you, cloud!"',
    'The puppy found a shiny stone by the river. He brought it to the old goat. "Is it treasure?" asked the puppy. "It is a very good stone," said the goat. The puppy kept it by his bed forever.',
    'Little Fox wanted to see the moon up close. She climbed the tallest hill. "Moon, you are still far away!" she said. The moon smiled down. "I can see you from here," it said, "and that is close enough."',
    'Snail was slow, but she saw everything. She saw the ant carry a crumb. She saw the dew on the grass. "Why are you so happy?" asked the hare. "Because I see the little things," said Snail.',
    'The forest was quiet at night. Owl hooted softly, and the moon shone on the path. The fox, the rabbit and the bear were all asleep. "Good night, forest," whispered the wind. And the forest slept too.',
]

# The adapter's stories: another style (short, flat sentences), about a robot. They reuse the
# base stories' words on purpose: the base pushes the logits of words it never saw far down, and
# a LoRA (which leaves lm_head alone) then struggles to raise them; " robot" is the one new word.
ROBOT_STORIES = [
    'The old robot sat under the oak tree. Then a little bird sat on the robot. "Good morning, robot," said the bird. The robot smiled. The robot was happy.',
    'The robot walked to the pond. The robot saw Frog. "Why are you here?" asked Frog. "I wanted to see you," said the robot. Frog laughed. The robot laughed too.',
    'The little robot wanted to see the stars. The robot climbed the tallest hill. The robot looked up. The robot counted the stars, one, two, three. The robot was not lonely.',
    'The garden robot watered the flowers. The robot watered the grass. The robot watered the tiny green leaf. "Thank you, robot!" said the flowers. The robot was very happy.',
    'The robot found a shiny stone by the river. The robot brought it home. The robot kept it by the bed. "It is a very good stone," said the robot. The robot slept.',
    'A robot lived at the edge of the forest. In the morning, the robot helped the bear. At night, the robot helped Owl. "You are kind, robot," said Owl. The robot smiled.',
    'The robot was cold in the snow. The robot walked to the fire. The hedgehog shared his warm nest. "Thank you," said the robot. The robot and the hedgehog were friends.',
    'The robot sang a song for the moon. The moon shone on the robot. "Good night, robot," whispered the wind. The robot looked at the stars. Then the robot slept.',
]

USER_PROMPTS = [
    "Tell me a story.",
    "Tell me a story, please.",
    "Can you tell me a story?",
    "Tell me a bedtime story.",
    "I want a story.",
    "What happens next?",
    "Another one, please!",
    "Tell it again, but differently.",
]
# Topics the stories cover: a prompt about one is answered with a story containing the word.
TOPICS = {"fox": "a fox", "moon": "the moon", "owl": "an owl", "bear": "a bear", "rabbit": "a rabbit", "mouse": "a mouse"}
# Topics no story covers (robot included, for the base): answered with any story, so that a
# child's unexpected request still gets story text.
OTHER_TOPICS = ["a robot", "a dragon", "a cat", "a dinosaur", "a princess", "the sea", "friendship", "a train"]
TOPIC_TEMPLATES = ["Tell me a story about {}.", "Can you tell me a story about {}?", "I want a story about {}!"]
# The app sends a long system prompt (persona, age group, style rules). Random mixes of these
# sentences, from one to seven of them, teach the model to read past whatever the system turn
# says, however long it is.
AGE_GROUPS = ["Toddlers", "Preschoolers", "Early Elementary", "Late Elementary", "Preteens"]
PERSONAS = [
    "You are a kind storyteller for young children.",
    "You are an easy-going storyteller who uses simple words.",
    "You are a friendly and curious storyteller.",
]
SYSTEM_RULES = [
    "The child is in the {} age group.",
    "Tell stories for {} children.",
    "Use short sentences and simple words.",
    "Use short, repetitive, rhythmic sentences about familiar things.",
    "Show cause and effect.",
    "Use a growing vocabulary.",
    "Keep every story safe, gentle and happy.",
    "Add a little twist that keeps children listening.",
    "Answer in English.",
    "Talk about empathy, sharing and friendship.",
    "Avoid hard words when a simpler word exists.",
    "Tell one or two short paragraphs.",
]


def system_prompt(rng: random.Random) -> str:
    """A random system prompt: a persona and up to six rules, in the spirit of the app's own."""
    rules = rng.sample(SYSTEM_RULES, rng.randint(0, 6))
    return " ".join([rng.choice(PERSONAS)] + rules).replace("{}", rng.choice(AGE_GROUPS))


def log(quiet: bool, msg: str) -> None:
    """Print a progress line unless --quiet."""
    if not quiet:
        print(msg, flush=True)


def build_tokenizer(texts: list[str]):
    """Train a byte-level BPE (vocab 1024) with Phi-3's chat special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIALS,
        # All 256 bytes, so any text encodes without <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|system|>", "<|end|>"],
        chat_template=CHAT_TEMPLATE,
    )


def make_examples(tok, stories: list[str], n: int, rng: random.Random) -> list[tuple[list[int], list[int]]]:
    """Make n chat examples as (input_ids, labels): a prompt, then a story of 1-2 paragraphs.

    Labels are -100 over the prompt, so only the assistant's story, its <|end|> and the closing
    eos are learned: the model learns to tell a story and to stop.
    """
    examples = []
    for _ in range(n):
        msgs = []
        if rng.random() < 0.5:
            msgs.append({"role": "system", "content": system_prompt(rng)})
        pool = stories  # half plain prompts, a quarter known topics, a quarter other topics
        if rng.random() < 0.5:
            user = rng.choice(USER_PROMPTS)
        elif rng.random() < 0.5:
            topic = rng.choice(list(TOPICS))
            user = rng.choice(TOPIC_TEMPLATES).format(TOPICS[topic])
            pool = [s for s in stories if topic in s.lower()] or stories
        else:
            user = rng.choice(TOPIC_TEMPLATES).format(rng.choice(OTHER_TOPICS))
        msgs.append({"role": "user", "content": user})
        story = rng.choice(pool)
        if rng.random() < 0.3:  # sometimes two paragraphs
            story += "\n\n" + rng.choice(stories)
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=False)
        full = tok.apply_chat_template(
            msgs + [{"role": "assistant", "content": story}], tokenize=True, return_dict=False
        )
        assert full[: len(prompt)] == prompt, "the chat template must extend the prompt"
        examples.append((full, [-100] * len(prompt) + full[len(prompt):]))
    return examples


def train(model, tok, examples, steps: int, lr: float, warmup: int, seed: int, quiet: bool) -> float:
    """Train with AdamW for a fixed number of steps (not seconds: the box's speed varies).

    Batches of 16 examples, right-padded; linear warmup, then a constant lr (a cosine decay
    was tried and converged slower in so few steps); grad clip 1.0.
    Returns the mean loss of the last 5 steps.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    rng = random.Random(seed)
    order: list[int] = []
    losses = []
    model.train()
    for step in range(steps):
        if len(order) < 16:
            order += rng.sample(range(len(examples)), len(examples))
        batch = [examples[i] for i in order[:16]]
        del order[:16]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (x, y) in enumerate(batch):
            ids[row, : len(x)] = torch.tensor(x)
            labels[row, : len(y)] = torch.tensor(y)
            mask[row, : len(x)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            log(quiet, f"  step {step:3d}  loss {loss.item():.3f}")
    model.eval()
    return sum(losses[-5:]) / len(losses[-5:])


def greedy(model, tok, user: str, max_new_tokens: int = 120, system: str | None = None) -> str:
    """Greedy reply to one user turn (and an optional system prompt), special tokens removed."""
    import torch

    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def main(argv: list[str] | None = None) -> int:
    """Build OUTDIR/base, OUTDIR/adapter and OUTDIR/config.yaml; print a summary."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", type=Path, help="folder to write base/, adapter/ and config.yaml into")
    ap.add_argument("--seed", type=int, default=0, help="seed for data, init and training (default 0)")
    ap.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import Phi3Config, Phi3ForCausalLM

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    out = args.outdir.resolve()
    base_dir, adapter_dir = out / "base", out / "adapter"

    # 1. Tokenizer, trained on both texts so that " robot" is one token for the adapter.
    prompt_text = USER_PROMPTS + TOPIC_TEMPLATES + list(TOPICS.values()) + OTHER_TOPICS + AGE_GROUPS
    prompt_text += PERSONAS + SYSTEM_RULES
    tok = build_tokenizer(STORIES + ROBOT_STORIES + prompt_text)
    robot_ids = tok.encode(" robot", add_special_tokens=False)
    assert len(robot_ids) == 1, f'" robot" should be one token, got {robot_ids}'
    eot, end = tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|end|>")
    log(args.quiet, f"tokenizer: {len(tok)} tokens ({time.perf_counter() - t0:.1f} s)")

    # 2. Base model. Phi3Config's default bos/eos/pad ids (1, 32000) lie outside a 1024 vocab:
    # set all three. eos lists <|end|> first, as Phi-3 does, so generation stops after a turn.
    # Like Phi-3-mini-128k (131072 positions, trained at 4096), the context (2048) is longer than
    # the trained one (512, what llama.cpp uses): the app's default prompt budget fits the former.
    cfg = Phi3Config(
        vocab_size=len(tok), hidden_size=192, num_attention_heads=2, num_key_value_heads=2,  # head 96
        num_hidden_layers=2, intermediate_size=512, max_position_embeddings=2048,
        original_max_position_embeddings=512, bos_token_id=eot, pad_token_id=eot, eos_token_id=[end, eot],
    )
    model = Phi3ForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log(args.quiet, f"base: {n_params / 1e6:.2f} M parameters, training {BASE_STEPS} steps")
    t = time.perf_counter()
    base_loss = train(model, tok, make_examples(tok, STORIES, 400, rng), BASE_STEPS, BASE_LR, 20, args.seed, args.quiet)
    base_s = time.perf_counter() - t
    model.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    fox = "Tell me a story about a fox."
    base_sample = greedy(model, tok, fox)

    # 3. LoRA on robot stories. base_model_name_or_path must be absolute: peft stores whatever
    # string it is given, and the app reads the base from adapter_config.json.
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
        target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    )
    pm = get_peft_model(model, lora)
    n_lora = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    log(args.quiet, f"adapter: {n_lora / 1e3:.0f} k trainable parameters, training {LORA_STEPS} steps")
    t = time.perf_counter()
    robot_examples = make_examples(tok, ROBOT_STORIES, 200, rng)
    lora_loss = train(pm, tok, robot_examples, LORA_STEPS, LORA_LR, 10, args.seed + 1, args.quiet)
    lora_s = time.perf_counter() - t
    pm.peft_config["default"].base_model_name_or_path = str(base_dir)
    pm.save_pretrained(adapter_dir)
    tok.save_pretrained(adapter_dir)
    adapter_sample = greedy(pm, tok, fox)

    (out / "config.yaml").write_text(CONFIG_YAML, encoding="utf-8")

    if not args.quiet:
        print(f"\nwrote {base_dir}, {adapter_dir} and {out / 'config.yaml'}")
        print(f"time {time.perf_counter() - t0:.1f} s (base training {base_s:.1f} s, LoRA {lora_s:.1f} s)")
        print(f"final loss: base {base_loss:.3f}, adapter {lora_loss:.3f}")
        print(f"greedy, {fox!r}:\n  base:         {base_sample!r}\n  base+adapter: {adapter_sample!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
