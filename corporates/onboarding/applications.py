"""An enterprise applies: the application's details, its documents, its first member.

The application is one transaction: the enterprise (``applied``), its KYB
profile, expected volumes, beneficial owners, documents, the applicant's login
(the enterprise's first admin, who signs in like any member to follow the
application) and the sanctions screening of the applicant and its owners.
Either all of it is stored, or none of it (document files written before a
failure are removed).

Documents are accepted by their content, not their name: the first bytes must
be those of a PDF, PNG or JPEG, and agree with the file's extension. They are
stored under MEDIA_ROOT/kyb/ with random names and are served only through the
authorising view.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.validators import validate_email
from django.db import IntegrityError, connection

from config import money
from config.db import run_in_transaction
from config.errors import DomainError
from config.ids import new_public_id
from corporates.lei import lei_normalise
from corporates.models import (
    BeneficialOwner,
    DocumentKind,
    Enterprise,
    EnterpriseStatus,
    ExpectedVolume,
    KybDocument,
    KybProfile,
    MemberRole,
    Membership,
)
from corporates.models.kyb import private_document_storage
from corporates.onboarding.status import status_change_record
from corporates.permissions import enterprise_admin_require

_COUNTRY = re.compile(r"^[A-Z]{2}$")

# Signature (first bytes) → content type; extension → the content type it must have.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_EXTENSIONS = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_STORED_EXTENSION = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}


class ApplicationInvalid(DomainError):
    code = "application_invalid"
    title = "The application is incomplete or has invalid fields."
    http_status = 400

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field)
        self.field = field


class EnterpriseAlreadyRegistered(ApplicationInvalid):
    code = "enterprise_already_registered"
    title = "An enterprise with this registration number (or LEI) has already applied."


class ApplicantEmailTaken(ApplicationInvalid):
    code = "applicant_email_taken"
    title = "A user with this email already exists."


class BeneficialOwnershipOver100(ApplicationInvalid):
    code = "beneficial_ownership_over_100"
    title = "Beneficial owners' shares add up to more than 100%."


class DocumentTypeNotAllowed(ApplicationInvalid):
    code = "document_type_not_allowed"
    title = "Documents must be PDF, PNG or JPEG files."


class DocumentTooLarge(ApplicationInvalid):
    code = "document_too_large"
    title = "The document is larger than the size limit."


@dataclass(frozen=True)
class OwnerInput:
    full_name: str
    nationality: str
    ownership_percent: Decimal | str


@dataclass(frozen=True)
class Application:
    legal_name: str
    registration_number: str
    jurisdiction: str
    registered_address: str
    lei: str
    contact_name: str
    contact_email: str
    contact_phone: str
    applicant_email: str
    applicant_password: str
    expected_volumes: Mapping[str, Decimal | str] = field(default_factory=dict)
    beneficial_owners: Sequence[OwnerInput] = ()
    documents: Mapping[str, File] = field(default_factory=dict)


@dataclass(frozen=True)
class InspectedDocument:
    content: bytes
    content_type: str
    sha256: str


def document_inspect(*, upload: File, field_name: str = "document") -> InspectedDocument:
    """Refuse anything but a PDF, PNG or JPEG within settings.KYB_DOCUMENT_MAX_BYTES, judged by its content."""
    limit = settings.KYB_DOCUMENT_MAX_BYTES
    size = upload.size
    if size is None or size > limit:
        raise DocumentTooLarge(f"{upload.name} is larger than {limit // 1024} KiB.", field=field_name)
    upload.seek(0)
    content = upload.read(limit + 1)
    if len(content) > limit:  # the declared size lied
        raise DocumentTooLarge(f"{upload.name} is larger than {limit // 1024} KiB.", field=field_name)
    if not content:
        raise DocumentTypeNotAllowed(f"{upload.name} is empty.", field=field_name)
    detected = next((ctype for signature, ctype in _SIGNATURES if content.startswith(signature)), None)
    claimed = _EXTENSIONS.get(PurePath(upload.name or "").suffix.lower())
    if detected is None or claimed is None:
        raise DocumentTypeNotAllowed(f"{upload.name} is not a PDF, PNG or JPEG file.", field=field_name)
    if detected != claimed:
        raise DocumentTypeNotAllowed(
            f"{upload.name} is named like a {claimed} file but its content is {detected}.", field=field_name
        )
    return InspectedDocument(content=content, content_type=detected, sha256=hashlib.sha256(content).hexdigest())


def _document_store(
    *, enterprise: Enterprise, kind: str, upload: File, inspected: InspectedDocument, actor: AbstractBaseUser | None
) -> KybDocument:
    public_id = new_public_id("doc")
    document = KybDocument(
        public_id=public_id,
        enterprise=enterprise,
        kind=kind,
        original_name=PurePath(upload.name or "document").name[:255],
        content_type=inspected.content_type,
        size_bytes=len(inspected.content),
        sha256=inspected.sha256,
        uploaded_by=actor,
    )
    stored_name = f"kyb/{enterprise.public_id}/{public_id}.{_STORED_EXTENSION[inspected.content_type]}"
    document.file.save(stored_name, ContentFile(inspected.content), save=False)
    try:
        document.save()
    except Exception:
        private_document_storage().delete(document.file.name)
        raise
    return document


class KybDocumentsClosed(DomainError):
    code = "kyb_documents_closed"
    title = "Documents can be added only while the application is open (applied or under review)."


def kyb_document_add(
    *, enterprise: Enterprise, kind: str, upload: File, actor: AbstractBaseUser | None = None
) -> KybDocument:
    """Add a document to an open application (e.g. a newer proof of address the back office asked for).

    Earlier documents stay: the back office sees every version, with who uploaded it and when.
    A user ``actor`` must be an admin of the enterprise, or back-office staff (``RoleNotPermitted``).
    """
    if kind not in DocumentKind.values:
        raise ApplicationInvalid(f"Unknown document kind {kind!r}.", field="kind")
    inspected = document_inspect(upload=upload, field_name="file")
    stored: list[KybDocument] = []

    def add() -> KybDocument:
        locked = Enterprise.objects.select_for_update().get(pk=enterprise.pk)
        if actor is not None and not (actor.is_active and actor.is_staff):
            enterprise_admin_require(actor=actor, enterprise_id=locked.pk)
        if locked.status not in (EnterpriseStatus.APPLIED, EnterpriseStatus.UNDER_REVIEW):
            raise KybDocumentsClosed(
                f"{locked.legal_name} is {locked.get_status_display().lower()}: "
                "documents are added only while the application is open."
            )
        document = _document_store(enterprise=locked, kind=kind, upload=upload, inspected=inspected, actor=actor)
        stored.append(document)
        return document

    try:
        return run_in_transaction(add)
    except Exception:
        for document in stored:
            private_document_storage().delete(document.file.name)
        raise


def _required(value: str, field_name: str, label: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ApplicationInvalid(f"{label} is required.", field=field_name)
    return value


def _country(value: str, field_name: str) -> str:
    value = (value or "").strip().upper()
    if not _COUNTRY.fullmatch(value):
        raise ApplicationInvalid("Use the two-letter ISO 3166 country code (e.g. HK).", field=field_name)
    return value


def _email(value: str, field_name: str) -> str:
    value = (value or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise ApplicationInvalid("Enter a valid email address.", field=field_name)
    return value


@dataclass(frozen=True)
class _CleanOwner:
    full_name: str
    nationality: str
    ownership_percent: Decimal


def _owners(owners: Sequence[OwnerInput]) -> list[_CleanOwner]:
    cleaned: list[_CleanOwner] = []
    for index, owner in enumerate(owners):
        prefix = f"beneficial_owners.{index}"
        try:
            percent = Decimal(str(owner.ownership_percent).strip())
        except InvalidOperation:
            raise ApplicationInvalid("Ownership is a percentage, e.g. 25.5.", field=f"{prefix}.ownership_percent")
        if not percent.is_finite() or percent <= 0 or percent > 100 or percent != percent.quantize(Decimal("0.01")):
            raise ApplicationInvalid(
                "Ownership is above 0 and at most 100, with at most two decimals.", field=f"{prefix}.ownership_percent"
            )
        cleaned.append(
            _CleanOwner(
                full_name=_required(owner.full_name, f"{prefix}.full_name", "The owner's name"),
                nationality=_country(owner.nationality, f"{prefix}.nationality"),
                ownership_percent=percent,
            )
        )
    if sum((owner.ownership_percent for owner in cleaned), Decimal(0)) > 100:
        raise BeneficialOwnershipOver100(
            "Beneficial owners' shares add up to more than 100%.", field="beneficial_owners"
        )
    return cleaned


def _volumes(volumes: Mapping[str, Decimal | str]) -> dict[str, Decimal]:
    cleaned: dict[str, Decimal] = {}
    for currency, amount in volumes.items():
        if amount is None or str(amount).strip() == "":
            continue
        try:
            code = money.parse_currency(currency, field="expected_volumes")
            cleaned[code] = money.parse_amount(str(amount).strip(), code, field=f"expected_volumes.{code}")
        except money.MoneyParseError as exc:
            raise ApplicationInvalid(exc.message, field=exc.field)
    if not cleaned:
        raise ApplicationInvalid(
            "Declare the expected monthly volume in at least one currency.", field="expected_volumes"
        )
    return cleaned


@dataclass(frozen=True)
class ApplicationResult:
    enterprise: Enterprise
    applicant: AbstractBaseUser


def enterprise_apply(*, application: Application) -> ApplicationResult:
    """Validate everything first, then store everything in one transaction and screen the parties."""
    from corporates.sanctions import sanctions_screen_enterprise

    app = application
    legal_name = _required(app.legal_name, "legal_name", "The legal name")
    registration_number = _required(app.registration_number, "registration_number", "The registration number").upper()
    jurisdiction = _country(app.jurisdiction, "jurisdiction")
    registered_address = _required(app.registered_address, "registered_address", "The registered address")
    try:
        lei = lei_normalise(app.lei)
    except DomainError as exc:
        raise ApplicationInvalid(exc.message, field="lei")
    contact_name = _required(app.contact_name, "contact_name", "The contact's name")
    contact_email = _email(app.contact_email, "contact_email")
    contact_phone = _required(app.contact_phone, "contact_phone", "The contact's phone")
    applicant_email = _email(app.applicant_email, "applicant_email")
    user_model = get_user_model()
    applicant = user_model(username=applicant_email, email=applicant_email)
    try:
        validate_password(app.applicant_password, user=applicant)
    except ValidationError as exc:
        raise ApplicationInvalid(" ".join(exc.messages), field="applicant_password")
    applicant.set_password(app.applicant_password)
    volumes = _volumes(app.expected_volumes)
    owners = _owners(app.beneficial_owners)
    missing = [kind for kind in DocumentKind.values if kind not in app.documents]
    if missing:
        raise ApplicationInvalid("This document is required.", field=missing[0])
    inspected = {kind: document_inspect(upload=upload, field_name=kind) for kind, upload in app.documents.items()}
    stored: list[KybDocument] = []

    def refuse_duplicates() -> None:
        if Enterprise.objects.filter(
            jurisdiction=jurisdiction, registration_number__iexact=registration_number
        ).exists():
            raise EnterpriseAlreadyRegistered(
                "This registration number has already applied.", field="registration_number"
            )
        if KybProfile.objects.filter(lei=lei).exists():
            raise EnterpriseAlreadyRegistered("This LEI has already applied.", field="lei")
        if user_model.objects.filter(username__iexact=applicant_email).exists():
            raise ApplicantEmailTaken("A user with this email already exists.", field="applicant_email")

    def forget_stored() -> None:
        for document in stored:
            private_document_storage().delete(document.file.name)
        stored.clear()

    def apply() -> ApplicationResult:
        forget_stored()  # files of an attempt that run_in_transaction is retrying
        refuse_duplicates()
        applicant.save()
        enterprise = Enterprise.objects.create(
            legal_name=legal_name, registration_number=registration_number, jurisdiction=jurisdiction
        )
        status_change_record(
            enterprise=enterprise,
            from_status="",
            to_status=EnterpriseStatus.APPLIED,
            reason="Application submitted",
            actor=applicant,
        )
        Membership.objects.create(user=applicant, enterprise=enterprise, role=MemberRole.ADMIN)
        KybProfile.objects.create(
            enterprise=enterprise,
            registered_address=registered_address,
            lei=lei,
            contact_name=contact_name,
            contact_email=contact_email,
            contact_phone=contact_phone,
        )
        ExpectedVolume.objects.bulk_create(
            ExpectedVolume(enterprise=enterprise, monthly_volume=amount, monthly_volume_currency=code)
            for code, amount in volumes.items()
        )
        BeneficialOwner.objects.bulk_create(
            BeneficialOwner(
                enterprise=enterprise,
                full_name=owner.full_name,
                nationality=owner.nationality,
                ownership_percent=owner.ownership_percent,
            )
            for owner in owners
        )
        for kind, upload in app.documents.items():
            stored.append(
                _document_store(
                    enterprise=enterprise, kind=kind, upload=upload, inspected=inspected[kind], actor=applicant
                )
            )
        sanctions_screen_enterprise(enterprise=enterprise)
        return ApplicationResult(enterprise=enterprise, applicant=applicant)

    try:
        return run_in_transaction(apply)
    except Exception as exc:
        forget_stored()  # the rows rolled back; the files on disk go with them
        if isinstance(exc, IntegrityError) and not connection.in_atomic_block:
            # A concurrent application took a unique value after our checks: name it.
            refuse_duplicates()
        raise
