"""domain.alignment on its own: steps aligned by signature, the first divergence, deltas."""

import random

from whyops_local.domain import alignment


def ev(step, kind, content=None, **metadata):
    return {"eventType": kind, "stepId": step, "content": content or {}, "metadata": metadata}


def run(arguments, final="Done."):
    events, step = [ev(1, "user_message", {"messages": [{"role": "user", "content": "go"}]})], 1
    for value in arguments:
        calls = [{"name": "search", "arguments": {"q": value}}]
        events += [ev(step + 1, "llm_response", {"toolCalls": [{"function": {"name": "search", "arguments": "{}"}}]},
                      model="m"),
                   ev(step + 2, "tool_call_request", {"toolCalls": calls}, tool="search"),
                   ev(step + 3, "tool_call_response", {"toolCalls": calls, "toolResults": {}}, tool="search")]
        step += 3
    return [*events, ev(step + 1, "llm_response", {"content": final}, model="m")]


def test_identical_runs_align_row_for_row_without_divergence():
    steps = alignment.steps_of(run(["a", "b", "c"]))
    rows, first = alignment.align(steps, steps)
    assert first is None and all(row["same"] for row in rows) and len(rows) == len(steps) == 8


def test_a_different_third_tool_call_is_the_first_divergence_and_the_rest_realigns():
    rows, first = alignment.align(alignment.steps_of(run(["a", "b", "c", "d"])),
                                  alignment.steps_of(run(["a", "b", "x", "d"], final="Other.")))
    assert first == 6
    assert (rows[6]["a"]["stepId"], rows[6]["a"]["text"], rows[6]["b"]["text"]) == (9, '{"q":"c"}', '{"q":"x"}')
    assert [row["same"] for row in rows] == [True] * 6 + [False] + [True] * 3
    assert rows[-1]["a"]["text"] == "Done." and rows[-1]["b"]["text"] == "Other."


def test_extra_steps_on_one_side_face_nothing():
    rows, first = alignment.align(alignment.steps_of(run(["a"])), alignment.steps_of(run(["a", "b"])))
    assert first == 3 and rows[3]["a"] is None and rows[4]["a"] is None and rows[-1]["same"]


def _lcs_length(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_the_matching_is_a_longest_common_subsequence():
    rng = random.Random(7)
    for _ in range(300):
        a = [rng.choice("ABCD") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("ABCD") for _ in range(rng.randint(0, 12))]
        pairs = alignment.matches(a, b)
        assert all(a[i] == b[j] for i, j in pairs)
        assert all(i1 < i2 and j1 < j2 for (i1, j1), (i2, j2) in zip(pairs, pairs[1:], strict=False))
        assert len(pairs) == _lcs_length(a, b), (a, b)


def test_text_diff_marks_lines():
    assert alignment.text_diff("a\nb", "a\nc") == [{"op": " ", "text": "a"}, {"op": "-", "text": "b"},
                                                   {"op": "+", "text": "c"}]


def test_long_runs_past_the_exact_table_realign_after_each_divergence():
    a = alignment.steps_of(run([str(i) for i in range(1700)]))
    b = alignment.steps_of(run([str(i) if i % 500 else "changed" for i in range(1700)]))
    rows, first = alignment.align(a, b)
    assert first == 2 and len(a) > 3400
    assert [i for i, row in enumerate(rows) if not row["same"]] == [2 + 2 * i for i in (0, 500, 1000, 1500)]


def test_odd_events_still_align():
    odd = [ev(1, "user_message", "x"), {"eventType": "llm_response", "stepId": 2, "content": None, "metadata": None},
           ev(3, "tool_call_request", {"toolCalls": "nope"}), ev(4, "error", {"message": None}), ev(5, "tool_result", [])]
    rows, first = alignment.align(alignment.steps_of(odd), alignment.steps_of(odd))
    assert first is None and len(rows) == 5
