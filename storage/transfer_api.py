"""Export and import of the labelled set (the tree format itself is in storage.transfer)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from storage import transfer
from storage.errors import LabelExistsError, UnknownLabelError
from storage.posts import PostsAPI
from storage.read_views import ReadViewsAPI
from storage.records import ExportReport, ImportReport
from storage.validation import check_id

IMPORT_PLATFORM = "import"  # posts created by `import_labelled` have no real chat


class TransferAPI(PostsAPI, ReadViewsAPI):
    # ---------------------------------------------------------------------- export, import

    async def export_labelled(self, folder: Path) -> ExportReport:
        """Write the labelled set as an ImageFolder tree: `<folder>/<label>/<sha256>.<ext>`."""
        training = await self.training_set()
        return await asyncio.to_thread(transfer.write_tree, training.examples, Path(folder))

    async def import_labelled(
        self, folder: Path, *, admin_id: str | int = "import", create_labels: bool = True,
        read_clip: transfer.ClipReader | None = None,
    ) -> ImportReport:
        """Label every image of an ImageFolder tree, as a correction by `admin_id`; clips (an
        export holds the clips admins labelled) are decoded with `read_clip`, without it they
        are refused.

        The whole tree is read and checked first, so a corrupt file or a bad folder name
        raises before anything is written.
        """
        admin = check_id(admin_id, "admin id")
        folder = Path(folder)
        items = await asyncio.to_thread(transfer.read_tree, folder, read_clip)
        wanted = sorted({item.label for item in items})
        known = {label.name for label in await self.list_labels()}
        missing = [name for name in wanted if name not in known]
        if missing and not create_labels:
            raise UnknownLabelError(f"unknown labels in {folder}: {', '.join(missing)}")
        for name in missing:
            with contextlib.suppress(LabelExistsError):  # another process added it meanwhile
                await self.add_label(name, added_by=admin)
        relabelled = unchanged = 0
        for item in items:
            data = await asyncio.to_thread(item.path.read_bytes)
            post = await self.add_post(
                platform=IMPORT_PLATFORM,
                chat_id=IMPORT_PLATFORM,
                message_id=item.sha256,
                author_id=admin,
                image=data,
                media=item.media,
            )
            if await self.effective_label(post.image.sha256) == item.label:
                unchanged += 1
                continue
            # Run by the bot's operator: the labels train like an approved correction.
            await self.record_correction(post.id, admin_id=admin, label=item.label,
                                         approved=True)
            relabelled += 1
        return ImportReport(
            folder=folder,
            images=len(items),
            relabelled=relabelled,
            unchanged=unchanged,
            labels_added=tuple(missing),
        )
