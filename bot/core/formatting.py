"""Every sentence the bot says, rendered from what the core decided, so that all adapters word
things the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.outcomes import RepostVerdict, RetrainQueued
from bot.core.setup_check import Finding, Problem
from storage.lifecycle import Removed
from storage.records import ModelVersion, Stats

# Names people recognise; any other label is shown as its words capitalised.
DISPLAY_NAMES = {"doom": "Doom", "animal_crossing": "Animal Crossing", "other": "Other"}


def display_name(label: str) -> str:
    return DISPLAY_NAMES.get(label) or label.replace("_", " ").title()


def percent(value: float) -> str:
    return f"{round(value * 100):d}%"


def reject_text(reject_label: str, labels: Sequence[str]) -> str:
    """"other: not a Doom or Animal Crossing meme" -- names the labels it is not."""
    known = sorted(
        (display_name(label) for label in labels if label != reject_label), key=_doom_first
    )
    if not known:
        return reject_label
    article = "an" if known[0][:1].lower() in "aeiou" else "a"
    return f"{reject_label}: not {article} {' or '.join(known)} meme"


def _doom_first(name: str) -> tuple[int, str]:
    # The product's own wording is "not a Doom or Animal Crossing meme".
    return (0 if name == "Doom" else 1, name)


REMEMBERED = "like a meme an admin labelled"


def prediction_text(
    label: str, confidence: float, *, reject_label: str, model_labels: Sequence[str],
    unsure: bool = False, remembered: bool = False,
) -> str:
    """"Doom (87%)"; a guess (below the model's calibrated confidence) says so:
    "not sure: maybe Animal Crossing (22%)"; a label taken from an admin's correction of a
    close image says that instead of a percentage: "Genshin (like a meme an admin labelled)"."""
    if remembered:
        named = reject_text(reject_label, model_labels) if label == reject_label else (
            display_name(label))
        return f"{named} ({REMEMBERED})"
    if label == reject_label:
        return reject_text(reject_label, model_labels)
    shown = f"{display_name(label)} ({percent(confidence)})"
    return f"not sure: maybe {shown}" if unsure else shown


def corrected_text(label: str, admin_name: str, *, confirmed: bool) -> str:
    verb = "confirmed" if confirmed else "set"
    return f"{display_name(label)} ({verb} by {admin_name})"


def button_text(label: str, *, current: bool) -> str:
    return f"✓ {display_name(label)}" if current else display_name(label)


HELP_INTRO = (
    "I label every image posted here: Doom, Animal Crossing or other.\n"
    "Admins fix a wrong label by pressing the right button under my reply."
)


def repost_text(verdict: RepostVerdict, *, removed_from: str | None) -> str:
    """"Repost: first posted by X on DATE" (and who posted the removed copy)."""
    head = f"Removed a repost by {removed_from}" if removed_from else "Repost"
    text = (f"{head}: first posted by {verdict.original_author} on "
            f"{verdict.original_posted_at:%Y-%m-%d}")
    return f"{text}\n{verdict.original_link}" if verdict.original_link else text


def exempted_text(admin_name: str) -> str:
    return f"Copies of this image are not flagged any more (exempted by {admin_name})."


def not_repost_text(admin_name: str) -> str:
    return f"Not a repost (marked by {admin_name})."


def busy_text(pending: int) -> str:
    return (f"I'm busy: {pending} memes are waiting to be labelled. "
            "Please post this one again in a minute.")


def unreadable_text(kind: str, reason: str) -> str:
    return f"Sorry, I can't read this {kind}: {reason.rstrip('.')}."


def admin_log_text(platform: str, chat_id: str, message_id: str, author: str, label_text: str
                   ) -> str:
    return f"{platform} chat {chat_id}, message {message_id} by {author}: {label_text}"


def admins_only_text(command: str) -> str:
    return f"Only admins of this chat can use /{command}."


def retrain_text(queued: RetrainQueued, status: str, serving: str, *, answered_later: bool
                 ) -> str:
    if queued.created:
        text = (f"Retraining ({queued.kind}) queued (job #{queued.job_id}). I keep using "
                f"{serving} until the new model passes its checks.")
    else:
        text = f"A retrain is already {status} (job #{queued.job_id})."
    return text + (" I'll post the results here when it ends." if answered_later else "")


def copy_text(label: str, author: str, link: str | None) -> str:
    """The caption of a meme's sorted copy, with the link back to the original message."""
    text = f"{display_name(label)} meme from {author}"
    return f"{text}: {link}" if link else text


def places_text(places: Mapping[str, str]) -> str:
    if not places:
        return "Sorting is off. Use /sort LABEL PLACE to copy a label's memes to a place."
    lines = ["Memes are copied to:"]
    lines += [f"• {display_name(label)} → {place}" for label, place in sorted(places.items())]
    return "\n".join(lines)


def labels_text(labels: Sequence[str], model_labels: Sequence[str]) -> str:
    lines = ["Labels:"]
    for label in labels:
        pending = "" if label in model_labels else " (new: learnt at the next /retrain)"
        lines.append(f"• {display_name(label)} [{label}]{pending}")
    return "\n".join(lines)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{display_name(k)} {v}" for k, v in counts.items()) or "none"


def metrics_summary(metrics: Mapping[str, Any]) -> str:
    """The held-out test numbers the trainer wrote into the model's metadata, if any."""
    test = metrics.get("test")
    if not isinstance(test, Mapping):
        return "no test metrics"
    parts = []
    if isinstance(test.get("accuracy"), (int, float)):
        parts.append(f"test accuracy {percent(test['accuracy'])}")
    per_class = test.get("per_class")
    if isinstance(per_class, Mapping) and per_class:
        f1s = [c.get("f1") for c in per_class.values() if isinstance(c, Mapping)]
        numbers = [f for f in f1s if isinstance(f, (int, float))]
        if f1s and len(numbers) == len(f1s):
            parts.append(f"macro F1 {sum(numbers) / len(numbers):.2f}")
    if isinstance(test.get("n"), int):
        parts.append(f"on {test['n']} images")
    return ", ".join(parts) or "no test metrics"


def stats_text(stats: Stats, model_version: str, metrics: Mapping[str, Any]) -> str:
    return "\n".join(
        [
            f"Memes seen: {stats.memes_seen} ({stats.unique_images} unique images)",
            f"Predicted: {_counts(stats.predicted_per_label)}",
            f"Labelled by admins: {_counts(stats.labelled_per_label)}",
            f"Corrections: {stats.corrections}, confirmations: {stats.confirmations}",
            f"Model: {model_version} ({metrics_summary(metrics)})",
            f"Retrain jobs: {stats.queued_jobs} queued, {stats.running_jobs} running",
        ]
    )


def model_text(
    current_version: str, metrics: Mapping[str, Any], versions: Sequence[ModelVersion],
    has_report: bool = False,
) -> str:
    """`has_report`: the serving version has its report.html (the console's Models page)."""
    lines = [f"Serving {current_version}: {metrics_summary(metrics)}"]
    if has_report:
        lines.append("Report (what it gets wrong, learned or lucky, other images, new classes): "
                     "on the web console's Models page")
    else:
        lines.append("No report for this version yet: `memebot report` writes one.")
    if versions:
        lines.append("Versions:")
        lines.extend(f"• {v.version} – {v.status.value}" for v in versions[-10:])
    return "\n".join(lines)


MAX_REPORT_CHARS = 3800  # Telegram allows 4096 characters per message


def job_report_text(
    job: Any,
    *,
    summary: str | None,
    serving: str,
    promoted: bool | None,
    log_lines: int = 12,
    by_chat: Mapping[str, int] | None = None,
    pending: int = 0,
) -> str:
    """What admins are told when a retrain job ends: the trainer's summary (corrections used,
    accuracy before/after, per-class changes, promoted or kept and why) or why it failed."""
    head = f"Retrain job #{job.id} ({job.kind}, asked by {job.requested_by})"
    tail = [line for line in (job.log_tail or "").splitlines() if line.strip()][-log_lines:]
    if job.status.value == "failed":
        lines = [f"{head} failed: {job.error or 'no reason given'}",
                 f"Still serving model {serving}."]
        if tail:
            lines += ["Last trainer output:", *tail]
    else:
        lines = [f"{head} finished."]
        if summary:
            lines.append(summary)
        if by_chat is not None:  # where the corrections it learnt from came from
            lines.append(corrections_by_chat_text(by_chat, pending))
        elif tail:
            lines += [f"New model {job.model_version}. Trainer output:", *tail]
        if promoted and serving == job.model_version:
            lines.append(f"Now serving model {serving}.")
        elif promoted:
            lines.append(f"Promoted, but this bot still serves model {serving}: the new model "
                         "did not load here (see the bot's log).")
        elif promoted is False:
            lines.append(f"Still serving model {serving}; an admin can /rollback "
                         f"{job.model_version} to serve the candidate anyway.")
    text = "\n".join(lines)
    if len(text) > MAX_REPORT_CHARS:
        text = text[: MAX_REPORT_CHARS - 1] + "…"
    return text


# ------------------------------------------------------------- button and reaction notices
# Shown to the presser only.

STALE_BUTTON = "This button is no longer valid."
UNKNOWN_MEME = "I no longer know this meme."
FOREIGN_BUTTON = "This button belongs to another chat."
ALREADY_DONE = "Already done."
TOO_OLD = "This message is too old to change."
EXEMPTED = "Exempted."


def admins_only_notice(action: str) -> str:
    return f"Only admins can {action}."


def not_repost_notice(sorted_note: str | None) -> str:
    return f"Marked not a repost. {sorted_note}" if sorted_note else "Marked not a repost."


def already_labelled_notice(label: str) -> str:
    return f"It is already {display_name(label)}."


def unknown_label_notice(label: str, *, hint: bool = False) -> str:
    return f"There is no label {label!r}" + ("; /labels lists them." if hint else ".")


def label_set_notice(label: str) -> str:
    return f"Label set to {display_name(label)}."


# ------------------------------------------------------------------- sorting, for admins

def copied_text(place: str) -> str:
    return f"Copied to {place}."


def copied_before_text(place: str) -> str:
    return f"It was copied to {place} before."


def copy_failed_text(place: str, reason: str) -> str:
    return f"I could not copy it to {place}: {reason}."


def moved_copy_text(old: str, new: str, sent_ok: bool, sent: str) -> str:
    if sent_ok:
        return f"Moved its copy from {old} to {new}."
    return f"Removed its copy from {old}. {sent}"


def copy_stays_text(old: str, sent: str) -> str:
    return f"{sent} The copy in {old} stays."


# -------------------------------------------------------------------------------- commands

def refused_text(what: str, reason: str) -> str:
    return f"Cannot {what}: {reason}."


def reposts_text(mode: str, days: int) -> str:
    return f"Reposts: {mode}, looking back {days} days."


def reposts_mode_text(mode: str) -> str:
    extra = (" I remove a repost only where I may delete messages; elsewhere I note it."
             if mode == "delete" else "")
    return f"Reposts: {mode}.{extra}"


def reposts_window_text(shown: str) -> str:
    return f"Reposts: looking back {shown} days."


def label_exists_text(name: str) -> str:
    return f"The label {name} already exists."


def bad_label_text(name: str) -> str:
    return f"{name!r} cannot be a label: use 1-32 lowercase letters, digits or underscores."


def label_added_text(name: str) -> str:
    return (f"Added the label {display_name(name)}. Label some memes with it, "
            "then /retrain so that I learn it.")


def serving_text(version: str) -> str:
    return f"Now serving model {version}."


def no_trainer_text(problem: str | None, *, switched_off: bool) -> str:
    """Why a queued retrain will wait (the /retrain reply adds it)."""
    if switched_off:
        return ("No trainer is running (MEMEBOT_TRAINER=off), so the job stays queued "
                "until one starts (`memebot trainer`).")
    why = f" ({problem})" if problem else ""
    return f"No trainer is running right now{why}, so the job stays queued until one runs."


def unknown_command_text(name: str) -> str:
    return f"/{name} is not a command I know."


# ------------------------------------------------------------------- roles, trust and undo

def operators_only_text(command: str, *, delegable: bool) -> str:
    """The private refusal of a command that changes what every chat shares."""
    text = (f"Only the bot's operators can use /{command}: it changes the model and labels "
            "every chat shares.")
    if delegable:
        return (f"{text} Ask an operator (whoever runs this bot) to do it, or to /delegate "
                "it to this chat's admins.")
    return f"{text} Ask an operator (whoever runs this bot)."


def trust_level_text(chat: str, level: str) -> str:
    return {
        "untrusted": f"{chat} is not trusted: its admins' corrections wait for an operator's "
                     "review (the console's review desk) before they train.",
        "trusted": f"{chat} is trusted: its admins' corrections train.",
        "delegated": f"{chat} is trusted, and its admins may also /retrain, /rollback and "
                     "/addlabel.",
    }[level]


def trust_changed_text(chat: str, before: str, now: str) -> str:
    if before == now:
        return f"No change. {trust_level_text(chat, now)}"
    return trust_level_text(chat, now)


def trusted_chats_text(chats: Sequence[tuple[str, str]]) -> str:
    if not chats:
        return "No chat is trusted: every chat's corrections wait for review."
    return "\n".join(["Trusted chats:", *(f"• {chat}: {level}" for chat, level in chats)])


def bad_chat_text(text: str) -> str:
    return (f"{text!r} is not a chat: give its id (e.g. -100123) or platform:id "
            "(e.g. discord:123456).")


UNDO_BUTTON = "↩ Undo"
UNDONE = "Correction undone."
ALREADY_TRAINED = "A retrain already used this correction: it can no longer be undone."


def undo_refused_notice() -> str:
    return "Only the admin who made this correction (or the bot's operators) can undo it."


def undone_text(label_text: str, admin_label: str | None) -> str:
    """The label reply once a correction is taken back."""
    if admin_label is None:
        return label_text
    return f"{display_name(admin_label)} (labelled by an admin)"


def corrections_by_chat_text(per_chat: Mapping[str, int], pending: int) -> str:
    """The retrain summary's line on where its corrections came from."""
    used = ", ".join(f"{chat} {count}" for chat, count in per_chat.items()) or "none"
    text = f"Corrections by chat: {used}."
    if pending:
        text += f" {pending} from chats not trusted wait for review (not used)."
    return text


# ------------------------------------------------------------------- /settings, per chat

SETTING_VALUES = {
    "on": "on", "off": "off",
    "every": "a reply to every meme", "confident": "a reply when confident",
    "silent": "silent (the admins' chat only)", "react": "a reaction instead of a reply",
    "note": "note it", "hold": "hold for the admins", "delete": "delete it",
    "all": "every label",
}
NO_SERVER_HERE = "Server settings exist on Discord servers only. Nothing was changed."
SERVER_SETTINGS_REFUSED = ("Only members with Manage Server (or the bot's operators) can change "
                           "the whole server's settings. This channel's own settings are "
                           "yours: /settings without server.")
CLOSE_MENU = "Done"
ALL_LABELS = "All labels"
DEFAULT_CHOICE = "Default"
BACK = "« Back"
MENU_CLOSED = "Settings closed."
SAVED = "Saved."


def setting_value_text(name: str, value: str) -> str:
    if name == "threshold":
        return percent(float(value))
    if name == "topics":
        return SETTING_VALUES["all"] if value == "all" else ", ".join(
            display_name(v) for v in value.split(",") if v)
    if name == "offtopic" and value == "off":
        return "nothing"
    return SETTING_VALUES.get(value, value)


def settings_text(menu: Any, note: str | None) -> str:
    """The summary of a `SettingsMenu`: each setting, and whether it is inherited."""
    where = "this server (channels may override)" if menu.scope == "server" else "this chat"
    lines = [f"Settings for {where}:"]
    for row in menu.rows:
        inherited = " (default)" if row.inherited else ""
        lines.append(f"• {row.title}: {row.shown}{inherited}")
    if note:
        lines += ["", note]
    return "\n".join(lines)


def setting_button_text(row: Any) -> str:
    return f"{row.title}: {row.shown}"[:64]


def choice_text(text: str, *, current: bool) -> str:
    return f"✓ {text}" if current else text


def pick_text(title: str) -> str:
    return f"Pick {title.lower()}:"


def setting_changed_text(title: str, admin: str) -> str:
    return f"{title} changed by {admin}."


def settings_saved_text(count: int) -> str:
    return f"Saved {count} setting{'s' if count != 1 else ''}."


def setting_choices_text(name: str, values: Sequence[str]) -> str:
    return f"{name} takes {', '.join(values)} or default. Nothing was changed."


def threshold_refused_text(raw: str) -> str:
    return (f"{raw!r} is not a threshold: give a number from 0 to 1 (0.7) or a percentage "
            "(70%), or default. Nothing was changed.")


def topics_refused_text(unknown: Sequence[str], labels: Sequence[str]) -> str:
    known = ", ".join(labels)
    if unknown:
        return (f"There is no label {', '.join(map(repr, unknown))}; on-topic labels are some "
                f"of {known}, or all. Nothing was changed.")
    return f"Keep at least one on-topic label (of {known}), or all. Nothing was changed."


def setting_needs_value_text(name: str) -> str:
    return f"Say what {name} should be, e.g. /settings {name} default. Nothing was changed."


def unknown_setting_text(word: str, names: Sequence[str]) -> str:
    return f"{word!r} is not a setting; the settings are {', '.join(names)}. Nothing was changed."


def settings_refused_text(reason: str) -> str:
    return f"Cannot save that: {reason}. Nothing was changed."


# ------------------------------------------------------------------------ off-topic memes

UNMAPPED_REACTION = "👀"  # reaction mode, for a label no reaction sets (Telegram allows it)
ALLOW = "Allow"
KEEP_REMOVED = "Keep removed"
ALLOWED = "Allowed: re-posted."
KEPT = "Kept removed."
NOT_HELD = "This meme is not held any more."
ADMIN_CHAT_ONLY = "These buttons work in the admins' chat only."
NOT_REPOSTED = "Allowed, but I could not post it back in its chat."


def not_connected_text(platform: str) -> str:
    """The console cannot re-post a held meme in a platform this process does not run."""
    return (f"{platform.capitalize()} is not connected in this process, so the meme cannot be "
            "re-posted from here: allow it in the admins' chat there, or keep it removed. "
            "Nothing was changed.")


def offtopic_note_text(label: str) -> str:
    return f"{display_name(label)} is off-topic here."


def offtopic_removed_text(author: str, label: str, *, held: bool) -> str:
    if held:
        return (f"{author}, your meme is held for the admins: {display_name(label)} is "
                "off-topic here.")
    return f"{author}, I removed your meme: {display_name(label)} is off-topic here."


def held_text(platform: str, chat_id: str, author: str, label_text: str) -> str:
    return (f"Held from {platform} chat {chat_id}: a meme by {author}, {label_text} "
            "(off-topic there). Allow re-posts it with credit.")


def decided_text(held: str, state: str, admin: str) -> str:
    verb = "Allowed and re-posted" if state == "allowed" else "Kept removed"
    return f"{held}\n{verb} by {admin}."


def allowed_repost_text(author: str, label: str, admin: str) -> str:
    return f"A meme by {author} ({display_name(label)}), allowed by {admin}."


# ------------------------------------------------------------------ setup check (issue 23)

_SETUP_WORDS: dict[Problem, tuple[str, str]] = {
    Problem.telegram_privacy: (
        "Privacy mode is on and I am not an admin{where}, so I see commands but not memes.",
        "Make me an admin of the group, or turn privacy mode off (@BotFather: /mybots, "
        "Bot Settings, Group Privacy, Turn off) and add me to the group again."),
    Problem.telegram_privacy_on: (
        "Privacy mode is on: in groups where I am not an admin I see commands but not memes.",
        "Make me an admin of those groups, or turn privacy mode off (@BotFather: /mybots, "
        "Bot Settings, Group Privacy, Turn off) and add me to them again."),
    Problem.telegram_reactions: (
        "Admins' emoji reactions never reach me{where}: Telegram sends reactions only to "
        "bots that are admins.",
        "Make me an admin of the group (no rights are needed for reactions)."),
    Problem.telegram_delete: (
        "Reposts are set to be removed, but I may not delete messages{where}.",
        "Make me an admin with the right to delete messages, or use /reposts note."),
    Problem.discord_intent: (
        "The Message Content intent is off, so messages reach me without their images.",
        "Discord developer portal: your application, Bot, Privileged Gateway Intents, turn "
        "on Message Content Intent, then restart me."),
    Problem.discord_permission: (
        "I lack the permission {detail}{where}.",
        "Server Settings, Roles (or the channel's settings, Permissions): allow {detail} for "
        "my role."),
    Problem.discord_unseen: (
        "I cannot see the channel {detail}, which my settings name.",
        "Give my role View Channel there, or change the setting that names it."),
}


def setup_finding_text(finding: Finding) -> str:
    problem, fix = _SETUP_WORDS[finding.problem]
    where = f" in {finding.where}" if finding.where else ""
    return (f"{problem.format(where=where, detail=finding.detail)} "
            f"Fix: {fix.format(detail=finding.detail)}")


def setup_report_text(findings: Sequence[Finding], *, checked: bool = True) -> str:
    if not checked:
        return "There is nothing to check here: this chat needs no platform permissions."
    if not findings:
        return "Setup check: everything I need works here."
    lines = [f"Setup check: {len(findings)} thing{'s' if len(findings) != 1 else ''} "
             "to fix."]
    lines += [f"- {setup_finding_text(f)}" for f in findings]
    return "\n".join(lines)


# --------------------------------------------------------------- people's data (issue 23)

PURGE_USAGE_DETAIL = (" (deletes every meme, caption and setting kept for the chat; "
                      "send it with the word confirm)")


def forgotten_text(removed: Removed) -> str:
    memes = f"{removed.posts} meme{'s' if removed.posts != 1 else ''}"
    kept = (f" The {removed.anonymized} label decisions you made as an admin stay, without "
            "your name." if removed.anonymized else "")
    return (f"Done: I deleted {memes} you posted, their captions, your name beside them and "
            f"the {removed.images} images only you posted.{kept} Model versions already "
            "trained cannot unlearn what they learnt from your memes; the next ones will not "
            "see them.")


def purged_text(chat_id: str, removed: Removed) -> str:
    return (f"Purged chat {chat_id}: {removed.posts} memes and {removed.images} images "
            "deleted, with their captions, names and the chat's settings.")


def privacy_text(retention_days: int | None, purge_after_leave_days: int | None) -> str:
    kept = (f"Memes no admin labelled are deleted after {retention_days} days; labelled ones "
            "are kept as training examples." if retention_days else
            "Memes are kept until they are deleted (below).")
    purge = (f"{purge_after_leave_days} days after I leave or am removed from a chat, "
             "everything from that chat is deleted." if purge_after_leave_days is not None
             else "A chat I leave is kept until an operator purges it.")
    return "\n".join([
        "What I keep for each meme: the image, the chat and message it was posted in, the "
        "poster's user id and display name (to say who posted an original first), the text "
        "posted with it, my label and any admin's correction (with the admin's user id).",
        kept,
        "A message deleted in the chat: I stop naming it as an original, and its image goes "
        "once no other post shows it.",
        purge,
        "/forgetme deletes every meme you posted, their captions, your name and the images "
        "only you posted; label decisions you made as an admin stay without your name. "
        "Model versions already trained cannot unlearn.",
    ])
