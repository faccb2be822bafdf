from django.apps import AppConfig


class CorporatesConfig(AppConfig):
    name = "corporates"
    verbose_name = "Corporates"
