"""Portal forms of the KYB application: input shape only; ``enterprise_apply`` holds the rules."""

from __future__ import annotations

from django import forms

from config import money
from corporates.models import DocumentKind

ACCEPT_DOCUMENTS = ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"


def volume_field_name(currency: str) -> str:
    return f"volume_{currency.lower()}"


class ApplicationForm(forms.Form):
    legal_name = forms.CharField(label="Legal name", max_length=200)
    registration_number = forms.CharField(label="Registration number", max_length=64)
    jurisdiction = forms.CharField(
        label="Jurisdiction",
        max_length=2,
        help_text="Two-letter country code of the register, e.g. HK.",
        widget=forms.TextInput(attrs={"size": 3, "autocapitalize": "characters", "placeholder": "HK"}),
    )
    registered_address = forms.CharField(label="Registered address", max_length=500, widget=forms.Textarea({"rows": 3}))
    lei = forms.CharField(label="LEI", max_length=30, help_text="The 20-character Legal Entity Identifier (ISO 17442).")
    contact_name = forms.CharField(label="Contact name", max_length=200)
    contact_email = forms.EmailField(label="Contact email")
    contact_phone = forms.CharField(label="Contact phone", max_length=32)
    certificate_of_incorporation = forms.FileField(
        label=DocumentKind.CERTIFICATE_OF_INCORPORATION.label,
        help_text="PDF, PNG or JPEG.",
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT_DOCUMENTS}),
    )
    proof_of_address = forms.FileField(
        label=DocumentKind.PROOF_OF_ADDRESS.label,
        help_text="PDF, PNG or JPEG, issued within the last three months.",
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT_DOCUMENTS}),
    )
    applicant_email = forms.EmailField(
        label="Your email", help_text="Your sign-in; you become the enterprise's first admin."
    )
    applicant_password = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )
    applicant_password_confirm = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Amounts stay text: config.money parses them (no float, no exponent).
        for code in money.CURRENCY_CODES:
            self.fields[volume_field_name(code)] = forms.CharField(
                label=f"Expected monthly volume in {code}",
                required=False,
                max_length=24,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"}),
            )

    def volume_fields(self) -> list[forms.BoundField]:
        return [self[volume_field_name(code)] for code in money.CURRENCY_CODES]

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("applicant_password") != cleaned.get("applicant_password_confirm"):
            self.add_error("applicant_password_confirm", "The two passwords differ.")
        return cleaned


class OwnerForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=200, required=False)
    nationality = forms.CharField(
        label="Nationality",
        max_length=2,
        required=False,
        widget=forms.TextInput(attrs={"size": 3, "placeholder": "HK"}),
    )
    ownership_percent = forms.CharField(
        label="Ownership %", max_length=7, required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"})
    )

    def is_blank(self) -> bool:
        return not any((self.cleaned_data or {}).get(name) for name in self.fields)


OwnerFormSet = forms.formset_factory(OwnerForm, extra=4, max_num=10, validate_max=True)


class DocumentUploadForm(forms.Form):
    kind = forms.ChoiceField(label="Document", choices=DocumentKind.choices)
    file = forms.FileField(
        label="File", help_text="PDF, PNG or JPEG.", widget=forms.ClearableFileInput(attrs={"accept": ACCEPT_DOCUMENTS})
    )
