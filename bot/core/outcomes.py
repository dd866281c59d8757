"""What the core decided, as data: adapters and the console act on these fields, and the words
for people (`Reply`) travel beside them, rendered by `bot.core.formatting`.

Nothing here is worded for a person except the `Reply`s, so a new adapter never has to guess
what the core meant from its wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.core.messages import Reply
from inference.classifier import Prediction
from storage.records import Post


class PostStatus(StrEnum):
    """What became of one posted image."""

    labelled = "labelled"  # classified and recorded (whether a reply shows depends on the mode)
    redelivered = "redelivered"  # the platform sent a message again that was already answered
    disabled = "disabled"  # the bot is switched off in this chat
    busy = "busy"  # too many images are waiting: post it again later
    too_large = "too_large"  # over the download size limit
    unsupported = "unsupported"  # an image format the bot does not read
    unreadable = "unreadable"  # not a complete image (corrupt, truncated, not an image)
    not_downloaded = "not_downloaded"  # the platform's file could not be fetched
    shutting_down = "shutting_down"  # the bot is stopping; the platform will redeliver


class MatchKind(StrEnum):
    """How a repost was recognised."""

    picture = "picture"  # perceptual hash (of the picture or its mirror image)
    embedding = "embedding"  # the classifier's embedding only (a crop, a re-caption)


@dataclass(frozen=True)
class RepostVerdict:
    """A post copies an earlier one of the same chat."""

    original_post_id: int
    original_author: str
    original_posted_at: datetime
    original_link: str | None  # opens the original message, where the platform has links
    matched_by: MatchKind
    hash_distance: int | None  # bits apart (picture matches)
    cosine: float | None  # embedding similarity, when the embedding was compared
    remove: bool  # the chat's admins asked for reposts to be removed


@dataclass(frozen=True)
class PostOutcome:
    status: PostStatus
    post_id: int | None = None
    prediction: Prediction | None = None
    post: Post | None = None  # the stored post (labelled)
    prediction_id: int | None = None  # the stored prediction (labelled)
    # Why an image was not labelled (too large, unreadable, ...), fit to show its poster.
    reason: str | None = None
    repost: RepostVerdict | None = None
    # What to show. `reply` is the label (with buttons); `repost_note` the "Repost: first
    # posted by ..." note with the admins' buttons; `removed_note` what to post instead of the
    # meme once it is deleted (delete mode, where the bot may delete: then nothing else is
    # sent); `admin_log` a line for the admins' chat (silent mode).
    reply: Reply | None = None
    repost_note: Reply | None = None
    removed_note: Reply | None = None
    admin_log: str | None = None
    # The admins' copy of `admin_log` with the image and buttons (silent mode).
    admin_post: Reply | None = None
    # Reaction mode: the emoji to react to the meme with instead of `reply`.
    reaction: str | None = None
    # The label is off-topic in this chat and the chat's action removes it (hold, delete).
    offtopic: OffTopicVerdict | None = None
    quiet: bool = False  # an old post (caught up): labelled and stored, not answered
    # The label came from the correction memory (an admin's label of a close image), so the
    # prediction's confidence is that image's cosine, not the model's probability.
    remembered: bool = False

    @property
    def label(self) -> str | None:
        return self.prediction.label if self.prediction is not None else None


class OffTopicAction(StrEnum):
    """What happens to a meme whose label is not on-topic in its chat."""

    off = "off"  # nothing (the default)
    note = "note"  # a reply saying so
    hold = "hold"  # removed where the bot may, sent to the admins to allow or keep removed
    delete = "delete"  # removed where the bot may, with a short notice to the poster


@dataclass(frozen=True)
class OffTopicVerdict:
    """A confident off-topic meme to remove. Where the bot may not delete it (or, to hold it,
    there is no admins' chat) it stays, and the outcome's label reply (`note`) says it is
    off-topic (silent mode: the admins' log does)."""

    action: OffTopicAction
    post_id: int
    note: Reply  # the label reply with the off-topic note
    notice: Reply  # said in the chat once the meme is removed (to the poster)
    admin_post: Reply | None  # hold: the image with Allow / Keep removed / label buttons
    author: str
    label: str  # the label that is off-topic there


class CorrectionStatus(StrEnum):
    """What a button press or reaction did."""

    corrected = "corrected"  # a new label was stored
    confirmed = "confirmed"  # the model's label was confirmed
    unchanged = "unchanged"  # the same decision again: nothing new
    repost_judged = "repost_judged"  # "not a repost" or "exempt" stored
    undone = "undone"  # an admin took a correction back
    settings_changed = "settings_changed"  # a /settings menu press changed this chat's rules
    shown = "shown"  # a /settings menu press only moved between pages
    hold_decided = "hold_decided"  # an admin allowed a held meme or kept it removed
    refused = "refused"  # the presser may not do this
    invalid = "invalid"  # a stale or foreign button, an unknown label or meme


@dataclass(frozen=True)
class CorrectionOutcome:
    """The answer to a button press or reaction.

    `notice` is shown to the presser only (Telegram: callback answer); `alert` asks for a
    dialog instead of a toast. `reply`, when set, replaces the bot's earlier reply.
    """

    status: CorrectionStatus
    notice: str
    reply: Reply | None = None
    post_id: int | None = None
    changed: bool = False  # the image's effective label changed
    label: str | None = None  # the label decided, when one was
    menu: SettingsMenu | None = None  # a /settings menu press: the menu to show now

    @property
    def alert(self) -> bool:
        return self.status in (CorrectionStatus.refused, CorrectionStatus.invalid)


class CommandStatus(StrEnum):
    done = "done"
    usage = "usage"  # the arguments did not fit: the reply says how to call it
    refused = "refused"  # the asker may not run it
    rejected = "rejected"  # understood, but it could not be done (bad name, nothing to roll back)


@dataclass(frozen=True)
class LabelAdded:
    name: str


@dataclass(frozen=True)
class RetrainQueued:
    job_id: int
    kind: str
    created: bool  # False: a retrain was already queued or running, and this joined it


@dataclass(frozen=True)
class ModelServing:
    version: str


@dataclass(frozen=True)
class RepostSettings:
    mode: str
    window_days: int


@dataclass(frozen=True)
class SortPlaces:
    places: dict[str, str]


@dataclass(frozen=True)
class TrustChanged:
    platform: str
    chat_id: str
    level: str  # storage.records.TrustLevel's value


@dataclass(frozen=True)
class SettingChoice:
    value: str
    text: str
    current: bool = False


@dataclass(frozen=True)
class SettingRow:
    """One setting of a chat as a menu shows it: its name, what it is now, and its choices
    (`payload(value)` is what picking one sends back to the core)."""

    name: str
    title: str
    shown: str  # the effective value, worded
    inherited: bool  # not set here: the server's or the default
    choices: tuple[SettingChoice, ...]
    multi: bool = False  # several may be picked (on-topic labels)


@dataclass(frozen=True)
class SettingsMenu:
    scope: str  # "chat" (a chat or Discord channel) or "server" (a Discord server)
    rows: tuple[SettingRow, ...]
    prefix: str  # payload prefix of this menu's choices: f"{prefix}{name}:{value}"

    def payload(self, name: str, value: str) -> str:
        return f"{self.prefix}{name}:{value}"


CommandData = (LabelAdded | RetrainQueued | ModelServing | RepostSettings | SortPlaces
               | TrustChanged | SettingsMenu | None)


@dataclass(frozen=True)
class CommandResult:
    name: str
    status: CommandStatus
    reply: Reply
    data: CommandData = None

    @property
    def ok(self) -> bool:
        return self.status is CommandStatus.done
