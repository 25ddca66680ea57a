from distnet.kit.errors import NotFound


class NotificationNotFound(NotFound):
    code = "notification-not-found"
    title = "Notification not found"
